"""Calls to caller-defined tools, scripted with ``[[call:NAME {"json": "arguments"}]]`` markers.

A request whose last user message carries call markers is answered with one ``function_call``
per marker (several markers: parallel calls in one response), provided the model was offered a
function tool of that name.  When the outputs come back (the request's input ends with
``function_call_output`` items), the reply reports each of them: ``Tool NAME returned: OUTPUT``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from claif_cod.testing.recorded import RecordedRequest

CALL_MARKER = re.compile(r"\[\[call:([A-Za-z0-9_.-]+)\s*(.*?)\]\]", re.DOTALL)
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


def returned_outputs(request: RecordedRequest) -> list[tuple[str, str]] | None:
    """``(tool name, output)`` of the outputs that end the input, or None when it does not end with any.

    These are the answers to the calls of the model's previous response."""
    items = [i for i in request.body.get("input") or [] if isinstance(i, dict)]
    tail = 0
    while tail < len(items) and items[len(items) - 1 - tail].get("type") == "function_call_output":
        tail += 1
    if not tail:
        return None
    names = {call.call_id: call.name for call in request.function_calls()}
    outputs = request.function_outputs()[-tail:]
    return [(names.get(output.call_id, "?"), output.output) for output in outputs]


def report(outputs: list[tuple[str, str]]) -> str:
    """The model's reply once the tool outputs came back."""
    lines = []
    for name, output in outputs:
        if name == SHELL_TOOL:
            lines.append(f"Tool said: {output[:_OUTPUT_CHARS]}")
        else:
            lines.append(f"Tool {name} returned: {output}")
    return "\n".join(lines)
