"""A Responses input's items read into the engine's history: messages (their text and images),
function calls and their outputs, compaction summaries; developer messages become instructions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from claif_cod.engine.conversations import HistoryItem, Message
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools import ToolCall, ToolResult
from claif_cod.openai_compat.chat_history import CACHE_BREAKPOINT
from claif_cod.openai_compat.compaction_item import summary_message
from claif_cod.openai_compat.content_parts import RESPONSES_PARTS, refused_part
from claif_cod.openai_compat.images import ImageRef
from claif_cod.openai_compat.ranges import not_one_of

ITEM_FIELDS = {
    "message": ("phase",),
    "function_call": ("namespace", "caller"),
    "function_call_output": ("name", "namespace", "caller"),
}
"""Input items' fields Codex's injected items lack: reported as ``input.<type>.<field>`` when given."""
_ANY_ITEM_FIELD = frozenset(field for fields in ITEM_FIELDS.values() for field in fields)
_IMAGE_HOLDERS = ("user", "function_call_output")
"""Where an image is read: a user message's content, and a tool's output (which Codex gives the model)."""


def item_fields(kind: str, get: Callable[[str], object], ignored: list[str]) -> None:
    ignored += (f"input.{kind}.{field}" for field in ITEM_FIELDS.get(kind, ()) if get(field) is not None)


def check_items(items: list[dict[str, Any]], name: str) -> list[ImageRef]:
    """Raises unless ``items`` (named ``name``) could be a Responses input's items; their image parts."""
    return read_items(items, [], name=name)[2]


def read_items(
    items: str | list[dict[str, Any]],
    ignored: list[str],
    *,
    name: str = "input",
    earlier: list[dict[str, Any]] | None = None,
) -> tuple[list[str], list[HistoryItem], list[ImageRef], list[int]]:
    """Developer instructions, the messages, calls and results, and the image parts with their item
    index; ``earlier``: the items of a conversation that ``items`` follow (what they hold that Codex
    cannot take is dropped unreported: this request did not send it)."""
    if isinstance(items, str):
        if not earlier:
            return [], [Message("user", items)], [], []
        items = [{"role": "user", "content": items}]
    if not items:
        raise InvalidRequest(f"{name} must not be empty", param=name)
    skip = len(earlier or ())
    instructions: list[str] = []
    messages: list[HistoryItem] = []
    refs: list[ImageRef] = []
    owners: list[int] = []
    ids: set[str] = set()
    for index, item in enumerate([*(earlier or ()), *items]):
        sent = index >= skip
        where = f"{name}[{index - skip}]" if sent else f"conversation item {index}"
        noted = ignored if sent else []
        kind = item.get("type", "message")
        if isinstance(ident := item.get("id"), str):
            if sent and ident in ids:  # as OpenAI: an id names one item, in a request and its conversation
                message = f"Duplicate item found with id {ident}. Remove duplicate items from your input and try again."
                raise InvalidRequest(message, param=name)
            ids.add(ident)
        if kind == "reasoning":
            noted.append("input.reasoning")  # opaque to Codex: earlier reasoning cannot be replayed
            continue
        if not _ANY_ITEM_FIELD.isdisjoint(item):
            item_fields(kind, item.get, noted)
        if kind == "function_call":
            messages.append(ToolCall(_string(item, "call_id", where), _string(item, "name", where), _arguments(item)))
            continue
        if kind == "function_call_output":
            output, parts = _content(item.get("output"), where, noted, role=kind, field="output")
            refs.extend(parts)
            owners.extend(len(messages) for _ in parts)
            messages.append(ToolResult(_string(item, "call_id", where), output))
            continue
        if kind == "compaction":  # what responses.compact made of the conversation before it
            messages.append(Message("user", summary_message(item.get("encrypted_content"), where)))
            continue
        if kind != "message":
            raise InvalidRequest(f"{where}: input items of type {kind!r} are not supported", param=where)
        role = item.get("role")
        text, parts = _content(item.get("content"), where, noted, role=role)
        if role in ("system", "developer"):
            instructions.append(text)
        elif role in ("user", "assistant"):
            refs.extend(parts)
            owners.extend(len(messages) for _ in parts)
            messages.append(Message(role, text))
        else:
            raise not_one_of(role, f"{where}.role", ("user", "assistant", "system", "developer"))
    return instructions, messages, refs, owners


def _content(
    content: object, where: str, ignored: list[str], *, role: object, field: str = "content"
) -> tuple[str, list[ImageRef]]:
    """The text of ``content`` (an item's ``field``) and its images, which a user message and a tool's
    output take."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: {field} must be a string or a list of parts", param=f"{where}.{field}")
    texts: list[str] = []
    refs: list[ImageRef] = []
    for j, part in enumerate(content):
        part_where = f"{where}.{field}[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind is None:
            raise InvalidRequest(f"{part_where}: a content part must be an object with a type", param=part_where)
        if CACHE_BREAKPOINT in part:
            ignored.append(f"input.content.{CACHE_BREAKPOINT}")
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_image" and role in _IMAGE_HOLDERS and isinstance(part.get("image_url"), str):
            refs.append(ImageRef(part["image_url"], part_where, part.get("detail")))
            if refs[-1].detail_reported:
                ignored.append("input_image.detail")  # "low" or "original" (see images.DETAILS)
        elif kind == "refusal" and role == "assistant" and isinstance(part.get("refusal"), str):
            ignored.append("input.content.refusal")  # as chat's: Codex's history has no refusals
        else:
            raise refused_part(part, part_where, role, images_here=role in _IMAGE_HOLDERS, kinds=RESPONSES_PARTS)
    return "\n".join(texts), refs


def _string(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}: {key} must be a non-empty string", param=where)
    return value


def _arguments(item: Mapping[str, Any]) -> str:
    value = item.get("arguments", "")
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()
