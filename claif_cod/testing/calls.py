"""Calls to caller-defined tools, scripted with ``[[call:NAME {"json": "arguments"}]]`` markers.

A request whose last user message carries call markers is answered with one ``function_call``
per marker (several markers: parallel calls in one response), provided the model was offered a
function tool of that name.  When the outputs come back (the request's input ends with
``function_call_output`` items), the reply reports each of them: ``Tool NAME returned: OUTPUT``.

A model in code mode is offered Codex's JavaScript ``exec`` tool instead, and the caller's tools only
inside it (``tools.NAME(args)``): there the markers become one ``exec`` call whose script calls each
tool in turn, as such a model would, and its output comes back as ``Tool exec returned: OUTPUT``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from claif_cod.testing.recorded import RecordedRequest, texts

CALL_MARKER = re.compile(r"\[\[call:([A-Za-z0-9_.-]+)\s*(.*?)\]\]", re.DOTALL)
EXEC_TOOL = "exec"
"""Codex's code-mode tool: a freeform (``custom``) tool whose input is JavaScript."""
SHELL_TOOL = "exec_command"
"""Codex's own shell tool, which ``[[tool:CMD]]`` calls; its outputs keep the ``Tool said:`` reply."""
_OUTPUT_CHARS = 200


class BadCallMarker(ValueError):
    """A call marker whose arguments are not a JSON object."""


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    arguments: str
    """The arguments as the model sends them: a JSON object, serialised."""


def scripted_calls(message: str) -> list[ScriptedCall]:
    """The call markers of ``message``, in order; raises BadCallMarker for arguments that are not a JSON object."""
    calls: list[ScriptedCall] = []
    for match in CALL_MARKER.finditer(message):
        name, raw = match.group(1), match.group(2).strip() or "{}"
        try:
            arguments = json.loads(raw)
        except ValueError:
            raise BadCallMarker(f"[[call:{name} ...]] needs a JSON object, got {raw!r}") from None
        if not isinstance(arguments, dict):
            raise BadCallMarker(f"[[call:{name} ...]] needs a JSON object, got {raw!r}")
        calls.append(ScriptedCall(name, json.dumps(arguments)))
    return calls


def missing_tools(request: RecordedRequest, calls: list[ScriptedCall]) -> list[str]:
    """Names the script calls that the model was not offered as function tools."""
    return [call.name for call in calls if request.tool(call.name) is None]


def exec_offered(request: RecordedRequest) -> bool:
    """Whether the model is in code mode: offered Codex's ``exec`` tool, which runs JavaScript (in ``tools``,
    or on the lite request format in an ``additional_tools`` input item, within a namespace)."""
    tools = list(request.body.get("tools") or [])
    for item in request.body.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            tools += item.get("tools") or []
    while tools:
        tool = tools.pop()
        if isinstance(tool, dict):
            if tool.get("type") == "custom" and tool.get("name") == EXEC_TOOL:
                return True
            tools += tool.get("tools") or [] if tool.get("type") == "namespace" else []
    return False


def exec_script(calls: list[ScriptedCall]) -> str:
    """The JavaScript a code-mode model sends ``exec`` to make ``calls``: each result as one text line."""
    return "\n".join(f"text(JSON.stringify(await tools.{c.name}({c.arguments})));" for c in calls)


_OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


def returned_outputs(request: RecordedRequest) -> list[tuple[str, str]] | None:
    """``(tool name, output)`` of the outputs that end the input, or None when it does not end with any.

    These are the answers to the calls of the model's previous response."""
    items = [i for i in request.body.get("input") or [] if isinstance(i, dict)]
    tail = 0
    while tail < len(items) and items[len(items) - 1 - tail].get("type") in _OUTPUT_TYPES:
        tail += 1
    if not tail:
        return None
    names = {call.call_id: call.name for call in request.function_calls()}
    names |= {str(i.get("call_id")): str(i.get("name")) for i in items if i.get("type") == "custom_tool_call"}
    outputs = items[len(items) - tail :]
    return [(names.get(str(o.get("call_id")), "?"), "\n".join(texts(o.get("output")))) for o in outputs]


def report(outputs: list[tuple[str, str]]) -> str:
    """The model's reply once the tool outputs came back."""
    lines = []
    for name, output in outputs:
        if name == SHELL_TOOL:
            lines.append(f"Tool said: {output[:_OUTPUT_CHARS]}")
        else:
            lines.append(f"Tool {name} returned: {output}")
    return "\n".join(lines)
