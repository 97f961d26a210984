"""The ranges OpenAI holds sampling parameters, ``logit_bias`` and ``metadata`` to, and the values it
takes for its enumerated ones (``include``'s too). Codex takes none of them (they are reported, or
have no effect), but a value out of range is OpenAI's 400, in its words, so that a program does not
first fail on OpenAI."""

from __future__ import annotations

from typing import Any

from claif_cod.engine.errors import InvalidRequest

_DECIMALS = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2), "presence_penalty": (-2, 2)}
_UNBOUNDED = float("inf")
_INTEGERS = {
    "n": (1, _UNBOUNDED),  # claif_cod's own upper bound is the chat request's (MAX_N)
    "top_logprobs": (0, 20),
    "max_tokens": (1, _UNBOUNDED),
    "max_completion_tokens": (1, _UNBOUNDED),
    "max_output_tokens": (16, _UNBOUNDED),
    "max_tool_calls": (1, _UNBOUNDED),
}


MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512


def check_metadata(metadata: dict[str, str] | None) -> None:
    """OpenAI's bounds on ``metadata``, the same for a chat completion, a response and a conversation,
    in its words (as measured against its API: a key too long is quoted by its ends)."""
    if metadata is None:
        return
    _check_properties("metadata", metadata, MAX_METADATA_PAIRS)
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            message = (
                f"Invalid property name in 'metadata': '{key[:3]}...{key[-3:]}' is too long. Expected a string with "
                f"maximum length {MAX_METADATA_KEY}, but got a string with length {len(key)} instead."
            )
            raise InvalidRequest(message, param=f"metadata.{key}", code="property_name_above_max_length")
        if len(value) > MAX_METADATA_VALUE:
            message = (
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_VALUE}, but got a string with length {len(value)} instead."
            )
            raise InvalidRequest(message, param=f"metadata.{key}", code="string_above_max_length")


def _check_properties(param: str, value: dict[str, Any], most: int) -> None:
    """OpenAI's refusal of an object with more than ``most`` keys, in its words."""
    if len(value) > most:
        message = (
            f"Invalid '{param}': too many properties. Expected an object with at most {most} "
            f"properties, but got an object with {len(value)} properties instead."
        )
        raise InvalidRequest(message, param=param, code="object_above_max_properties")


MAX_LOGIT_BIAS, LOGIT_BIAS = 1024, 100


def check_logit_bias(logit_bias: dict[str, int] | None) -> None:
    """Chat's ``logit_bias``: at most 1024 token ids (non-negative integers), each to a bias from -100
    to 100. Codex samples nothing (the parameter is reported), but OpenAI refuses these."""
    if logit_bias is None:
        return
    _check_properties("logit_bias", logit_bias, MAX_LOGIT_BIAS)
    for token, bias in logit_bias.items():
        if not (token.isascii() and token.isdigit()):
            message = f"Invalid key in 'logit_bias': {token}. You should only be submitting non-negative integers."
            raise InvalidRequest(message, param="logit_bias")
        check_bound(f"logit_bias.{token}", bias, -LOGIT_BIAS, LOGIT_BIAS, "integer")


def check_ranges(request: object) -> None:
    """Each of these parameters ``request`` has (Chat or Responses), within OpenAI's bounds."""
    check_metadata(getattr(request, "metadata", None))
    check_logit_bias(getattr(request, "logit_bias", None))
    for bounds, kind in ((_DECIMALS, "decimal"), (_INTEGERS, "integer")):
        for name, (low, high) in bounds.items():
            check_bound(name, getattr(request, name, None), low, high, kind)


def check_bound(name: str, value: float | None, low: float, high: float, kind: str) -> None:
    """OpenAI's refusal of a number outside ``low``..``high``, in its words (``kind``: decimal or integer)."""
    if value is None or low <= value <= high:
        return
    if value > high:
        side, extreme, limit = "above", "max", f"<= {high}"
    else:
        side, extreme, limit = "below", "min", f">= {low}"
    said = _said(value)
    message = f"Invalid '{name}': {kind} {side} {extreme}imum value. Expected a value {limit}, but got {said} instead."
    raise InvalidRequest(message, param=name, code=f"{kind}_{side}_{extreme}_value")


def _said(value: float) -> str:
    """``value`` as OpenAI says it back: an integer whole, a decimal as ``%g``. (Never an integer through
    a float: one past a float's range, which a JSON body may hold, raised OverflowError, a 500.)"""
    return str(value) if isinstance(value, int) else f"{value:g}"


EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
"""OpenAI's reasoning efforts (openai's ``ReasoningEffort``); which a model takes is Codex's to say."""

ENUMS = {
    "truncation": ("auto", "disabled"),
    "service_tier": ("auto", "default", "fast", "flex", "priority", "scale"),
    "verbosity": ("low", "medium", "high"),
}
"""OpenAI's values of these parameters (``verbosity``: chat's, and Responses' ``text.verbosity``)."""


def check_enums(request: object) -> None:
    """Each parameter of :data:`ENUMS` that ``request`` has (Chat or Responses) is one of OpenAI's
    values: Codex takes none of them, but another value is OpenAI's 400."""
    for name, allowed in ENUMS.items():
        check_one_of(getattr(request, name, None), name, allowed)


def check_one_of(value: str | None, param: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise not_one_of(value, param, allowed)


def not_one_of(value: object, param: str, allowed: tuple[str, ...]) -> InvalidRequest:
    """OpenAI's refusal of a value outside a parameter's enumeration, in its words."""
    named = list(map(repr, allowed))
    listed = " and ".join(named) if len(named) == 2 else ", ".join(named[:-1]) + f", and {named[-1]}"
    return InvalidRequest(f"Invalid value: {value!r}. Supported values are: {listed}.", param, "invalid_value")


INCLUDABLE = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)
"""Responses' ``include`` values: openai's ``ResponseIncludable``, in the order OpenAI's refusal lists them."""


def check_include(include: list[str] | None) -> None:
    """Each ``include`` value is one of OpenAI's (Codex provides none of them: ``include`` is reported)."""
    for index, value in enumerate(include or ()):
        check_one_of(value, f"include[{index}]", INCLUDABLE)
