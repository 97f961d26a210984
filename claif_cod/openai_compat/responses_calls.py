"""A Responses input's function calls and their outputs, checked as OpenAI checks them.

Codex would take either alone: an output without its call reaches the model as a result of nothing,
and a call without its output is answered ``aborted`` by Codex. OpenAI refuses both, so a program
written against claif_cod does not fail only once it meets OpenAI.
"""

from __future__ import annotations

from collections.abc import Sequence

from claif_cod.engine.conversations import HistoryItem
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools import ToolCall, ToolResult


def check_calls(items: Sequence[HistoryItem], *, continuing: bool) -> None:
    """Every ``function_call`` of ``items`` has its output after it, and every output a call before it;
    ``continuing`` a previous response, an output may answer one of that response's calls instead."""
    calls: dict[str, None] = {}  # in order, each looked up at once: an agent's transcript may hold hundreds
    answered: set[str] = set()
    for item in items:
        if isinstance(item, ToolCall):
            calls[item.call_id] = None
        elif isinstance(item, ToolResult):
            if item.call_id not in calls and not continuing:
                message = f"No tool call found for function call output with call_id {item.call_id}."
                raise InvalidRequest(message, param="input")
            answered.add(item.call_id)
    missing = next((call for call in calls if call not in answered), None)
    if missing is not None:
        raise InvalidRequest(f"No tool output found for function call {missing}.", param="input")
