"""Why a content part of a chat message or a Responses input item cannot be read, said as OpenAI says
it where it has words for it (a missing field, a field of the wrong type), so that the caller hears
what is wrong with a part whose type is supported, not that its type is not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from claif_cod.engine.errors import InvalidRequest, missing

_JSON_KINDS = {str: "a string", bool: "a boolean", int: "an integer", float: "a decimal", list: "an array"}


CHAT_PARTS = (("text",), "image_url")
RESPONSES_PARTS = (("input_text", "output_text"), "input_image")
"""The text part types and the image part type of each API: a part of the other API's type is not supported."""


def refused_part(
    part: Mapping[str, Any], where: str, role: object, *, images_here: bool, kinds: tuple[tuple[str, ...], str]
) -> InvalidRequest:
    """The refusal of ``part`` (at ``where``, in a message of ``role``) that none of its readers took.
    ``images_here``: images are taken where the part stands (a user message's content, a tool's
    output); ``kinds``: the API's part types (:data:`CHAT_PARTS`, :data:`RESPONSES_PARTS`)."""
    kind = part.get("type")
    text_kinds, image_kind = kinds
    if kind in text_kinds:
        return _field(part, "text", where, str)
    if kind == image_kind:
        if not images_here:
            message = (
                f"{where}: an image can only be sent in a user message or a tool's output, not in one of role {role!r}"
            )
            return InvalidRequest(message, where)
        if kind == "image_url":  # chat: {"url": ...}
            field = part.get("image_url")
            if isinstance(field, dict):
                return _field(field, "url", f"{where}.image_url", str)
            return _field(part, "image_url", where, dict)
        if part.get("file_id") is not None and part.get("image_url") is None:
            message = f"{where}: file_id is not supported (claif_cod has no Files API): "
            message += "send the image as image_url, a data: or http(s) URL"
            return InvalidRequest(message, f"{where}.file_id")
        return _field(part, "image_url", where, str)
    return InvalidRequest(f"{where}: content part of type {kind!r} is not supported", where)


def _field(part: Mapping[str, Any], name: str, where: str, expected: type) -> InvalidRequest:
    value = part.get(name)
    param = f"{where}.{name}"
    if value is None:
        return missing(param)
    wanted = "an object" if expected is dict else _JSON_KINDS[expected]
    got = "an object" if isinstance(value, dict) else _JSON_KINDS.get(type(value), type(value).__name__)
    message = f"Invalid type for '{param}': expected {wanted}, but got {got} instead."
    return InvalidRequest(message, param, "invalid_type")
