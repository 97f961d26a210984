"""A Responses input's function calls and their outputs, checked as OpenAI checks them.

Codex would take either alone: an output without its call reaches the model as a result of nothing,
and a call without its output is answered ``aborted`` by Codex. OpenAI refuses both, so a program
written against claif_cod does not fail only once it meets OpenAI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from claif_cod.engine.conversations import HistoryItem
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools import ToolCall, ToolResult


def check_calls(items: Sequence[HistoryItem], waiting: Iterable[str] = ()) -> None:
    """Every ``function_call`` of ``items``, and every call ``waiting`` (those of the response it
    continues), has its output in ``items``; every output answers one of those calls."""
    calls = dict.fromkeys(waiting)  # in order, each looked up at once: an agent's transcript may hold hundreds
    answered: set[str] = set()
    for item in items:
        if isinstance(item, ToolCall):
            calls[item.call_id] = None
        elif isinstance(item, ToolResult):
            if item.call_id not in calls:
                message = f"No tool call found for function call output with call_id {item.call_id}."
                raise InvalidRequest(message, param="input")
            answered.add(item.call_id)
    missing = next((call for call in calls if call not in answered), None)
    if missing is not None:
        raise InvalidRequest(f"No tool output found for function call {missing}.", param="input")


class _OutputItem(msgspec.Struct):
    type: str = ""
    call_id: str | None = None


class _Output(msgspec.Struct):
    output: list[_OutputItem] = []


_output = msgspec.json.Decoder(_Output)


def calls_made(body: bytes) -> list[str]:
    """The call ids of a stored response's ``function_call`` items (its JSON ``body``), in order."""
    return [item.call_id for item in _output.decode(body).output if item.type == "function_call" and item.call_id]
