"""OpenAI function tools in ``chat.completions`` ↔ the engine's caller tools (see docs/parameters.md).

Request side: ``tools``, ``tool_choice`` and ``parallel_tool_calls`` become a :class:`ThreadTools`
(what a thread offers) plus the names of what cannot be honoured; assistant ``tool_calls`` and
``tool`` messages become history items.  Response side: the engine's calls become OpenAI
``tool_calls`` (whole, or as stream deltas).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools import ThreadTools, ToolCall, ToolSpec
from claif_cod.openai_compat.schema_limits import check_schema
from claif_cod.openai_compat.tool_schema import dropped_keywords

_NAME_LIMIT = 64
_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_CHOICES = ("none", "auto", "required")


class FunctionDef(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(msgspec.Struct):
    type: str
    function: FunctionDef | None = None


class CalledFunction(msgspec.Struct):
    name: str
    arguments: str = ""


class ChatToolCall(msgspec.Struct):
    """An assistant message's tool call, as the caller sends it back (and as we send it out)."""

    id: str
    function: CalledFunction
    type: Literal["function"] = "function"


def thread_tools(
    tools: list[ChatTool] | None,
    tool_choice: str | dict[str, Any] | None,
    parallel_tool_calls: bool | None,
    builtin_tools: bool | None,
    ignored: list[str],
    name_field: str = "function.name",
) -> ThreadTools:
    """What the turn's thread offers; appends to ``ignored`` what Codex cannot honour.  ``name_field``:
    where a tool's name is in the request (Responses has it at the tool's top level)."""
    specs: list[ToolSpec] = []
    for index, tool in enumerate(tools or []):
        where = f"tools[{index}]"
        if tool.type != "function" or tool.function is None:
            raise InvalidRequest(f"{where}: only function tools can be offered through Codex", param=where)
        fn = tool.function
        check_name(fn.name, f"{where}.{name_field}")
        check_schema(fn.parameters, f"{where}.{name_field.removesuffix('name')}parameters")
        if fn.strict and "tools.function.strict" not in ignored:
            ignored.append("tools.function.strict")
        for keyword in sorted(dropped_keywords(fn.parameters)):  # the model sees Codex's subset of the schema
            if f"tools.function.parameters.{keyword}" not in ignored:
                ignored.append(f"tools.function.parameters.{keyword}")
        specs.append(ToolSpec(fn.name, fn.description or "", fn.parameters or {}))
    if len({s.name for s in specs}) != len(specs):
        raise InvalidRequest("tools: function names must be unique", param="tools")
    if isinstance(tool_choice, str) and tool_choice not in _CHOICES:
        message = f"Invalid value: '{tool_choice}'. Supported values are: 'none', 'auto', and 'required'."
        raise InvalidRequest(message, param="tool_choice", code="invalid_value")
    named = _named(tool_choice)
    if named is not None and named not in {s.name for s in specs}:  # OpenAI's words name the old parameters
        message = f"Invalid value for 'function_call': no function named '{named}' was specified in the "
        message += "'functions' parameter."
        raise InvalidRequest(message, param="function_call")
    if tool_choice == "none":
        specs = []  # not offered for this turn: a thread without them takes it
    elif tool_choice not in (None, "auto"):
        ignored.append("tool_choice")  # Codex cannot force a call: treated as "auto"
    if parallel_tool_calls is False and specs:
        ignored.append("parallel_tool_calls")
    return ThreadTools(specs=tuple(specs), builtin=builtin_tools is not False)


MAX_TOOLS = 128


def check_chat_tools(tools: list[ChatTool] | None, tool_choice: object, parallel_tool_calls: bool | None) -> None:
    """What OpenAI's chat refuses of the tool set as a whole: an empty or over-long ``tools``, and a
    ``tool_choice`` or ``parallel_tool_calls`` without tools (Responses takes these, see
    :func:`check_responses_tool_choice`)."""
    if tools is None:
        for param, value in (("tool_choice", tool_choice), ("parallel_tool_calls", parallel_tool_calls)):
            if value is not None:
                message = f"Invalid value for '{param}': '{param}' is only allowed when 'tools' are specified."
                raise InvalidRequest(message, param=param)
    elif not tools:
        message = (
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead."
        )
        raise InvalidRequest(message, param="tools", code="empty_array")
    elif len(tools) > MAX_TOOLS:
        message = f"Invalid 'tools': array too long. Expected an array with maximum length {MAX_TOOLS}, "
        message += f"but got an array with length {len(tools)} instead."
        raise InvalidRequest(message, param="tools", code="array_above_max_length")


def check_responses_tool_choice(tool_choice: object, names: set[str]) -> None:
    """Responses takes ``tool_choice`` ``"none"`` or ``"auto"`` without tools, but not a choice that
    needs one of them (``names``: the request's function tools), in its own words (not chat's)."""
    if tool_choice == "required" and not names:
        raise InvalidRequest("Tool choice 'required' must be specified with 'tools' parameter.", param="tool_choice")
    named = _named(tool_choice)
    if named is not None and named not in names:
        raise InvalidRequest("Tool choice 'function' not found in 'tools' parameter.", param="tool_choice")


def check_tool_timeout(seconds: float | None) -> None:
    """claif_cod's own ``tool_timeout`` (chat and Responses alike): up to a day."""
    if seconds is not None and not 0 < seconds <= 86400:
        raise InvalidRequest("tool_timeout must be more than 0 and at most 86400 seconds", param="tool_timeout")


def _named(tool_choice: object) -> str | None:
    """The function a ``tool_choice`` names: chat's ``{"type": "function", "function": {"name"}}``,
    Responses' ``{"type": "function", "name"}``."""
    if not isinstance(tool_choice, dict) or tool_choice.get("type") != "function":
        return None
    function = tool_choice.get("function")
    name = function.get("name") if isinstance(function, dict) else tool_choice.get("name")
    return name if isinstance(name, str) else None


def check_not_empty(value: str | None, param: str) -> None:
    """OpenAI's refusal of an empty string where it takes a name or a value from a list."""
    if value == "":
        message = "empty string. Expected a string with minimum length 1, but got an empty string instead."
        raise InvalidRequest(f"Invalid '{param}': {message}", param=param, code="empty_string")


def check_name(name: str, param: str) -> None:
    """A function's or an output schema's name as OpenAI takes it (the model behind Codex is asked
    with it), in its words."""
    check_not_empty(name, param)
    if len(name) > _NAME_LIMIT:
        code = "string_above_max_length"
        message = f"string too long. Expected a string with maximum length {_NAME_LIMIT}, "
        message += f"but got a string with length {len(name)} instead."
    elif not _NAME.fullmatch(name):
        code = "invalid_value"
        message = "string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
    else:
        return
    raise InvalidRequest(f"Invalid '{param}': {message}", param=param, code=code)


def engine_calls(calls: list[ChatToolCall], where: str) -> list[ToolCall]:
    for call in calls:
        if call.type != "function":
            raise InvalidRequest(f"{where}: tool call of type {call.type!r} is not supported", param=where)
    return [ToolCall(call_id=c.id, name=c.function.name, arguments=c.function.arguments) for c in calls]


def chat_tool_calls(calls: tuple[ToolCall, ...]) -> list[ChatToolCall]:
    return [ChatToolCall(id=c.call_id, function=CalledFunction(name=c.name, arguments=c.arguments)) for c in calls]


class ToolCallDelta(msgspec.Struct):
    """One tool call in a stream chunk: sent whole, in one delta (Codex reports a call once it is complete)."""

    index: int
    id: str
    function: CalledFunction
    type: Literal["function"] = "function"


def tool_call_deltas(calls: tuple[ToolCall, ...]) -> list[ToolCallDelta]:
    return [
        ToolCallDelta(index=i, id=c.call_id, function=CalledFunction(name=c.name, arguments=c.arguments))
        for i, c in enumerate(calls)
    ]
