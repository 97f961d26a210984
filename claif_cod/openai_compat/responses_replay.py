"""Answering tool calls whose turn is gone: the stored conversation, replayed on a new thread.

A response that ended with ``function_call`` items leaves its Codex turn suspended, waiting for the
results. When that turn is gone (the daemon restarted, or the ``tool_timeout`` passed) and the caller
sends ``previous_response_id`` with the ``function_call_output`` items, the conversation is rebuilt
from the response records: each response of the ``previous_response_id`` chain contributes its
request's input items and its output (messages, and calls as real ``function_call`` items), then the
new results follow. That transcript starts a new thread exactly as a caller replaying it would
(calls and results injected as Responses items, never flattened into text), and the turn answers
the results.
"""

from __future__ import annotations

from typing import Any

import msgspec

from claif_cod.openai_compat.responses_request import ParsedResponses, parse_responses_request
from claif_cod.openai_compat.responses_schema import FunctionCallOutput, OutputMessage, Response
from claif_cod.openai_compat.responses_store import ResponseRecord, ResponseStore

_response = msgspec.json.Decoder(Response)
_items = msgspec.json.Decoder(list[dict[str, Any]])
_DROPPED_ROLES = ("system", "developer")
"""Already in the chain's developer instructions (the record's ``instructions``)."""


def replayed(
    store: ResponseStore, parsed: ParsedResponses, previous_id: str, *, default_model: str | None, strict: bool
) -> ParsedResponses | None:
    """``parsed`` (whose input ends with results for ``previous_id``'s calls) as a whole transcript without
    ``previous_response_id``; None when a response of the chain is gone (deleted, or past capacity)."""
    chain = _chain(store, previous_id)
    if chain is None:
        return None
    items = _transcript(chain)
    request = parsed.request
    own = [{"role": "user", "content": request.input}] if isinstance(request.input, str) else request.input
    whole = msgspec.structs.replace(
        request,
        input=[*items, *own],
        previous_response_id=None,
        instructions=request.instructions or chain[0][0].instructions,
    )
    replay = parse_responses_request(msgspec.json.encode(whole), default_model=default_model, strict=strict)
    replay.ignored = parsed.ignored
    return replay


def chain_items(store: ResponseStore, previous_id: str) -> list[dict[str, Any]] | None:
    """The input items of ``previous_id``'s chain and its outputs, oldest first, without system or
    developer messages; None when a response of the chain is gone."""
    chain = _chain(store, previous_id)
    return None if chain is None else _transcript(chain)


def _chain(store: ResponseStore, previous_id: str) -> list[tuple[ResponseRecord, Response]] | None:
    """The responses of the chain, newest first."""
    chain: list[tuple[ResponseRecord, Response]] = []
    response_id: str | None = previous_id
    while response_id is not None:
        record = store.get(response_id)
        if record is None or not record.stored:
            return None
        response = _response.decode(record.body)
        chain.append((record, response))
        response_id = response.previous_response_id
    return chain


def _transcript(chain: list[tuple[ResponseRecord, Response]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for record, response in reversed(chain):
        # without their ids: a chain may repeat one (only a request's own input and its conversation
        # are checked for that), and Codex is given none
        items.extend(_without_id(i) for i in _items.decode(record.input) if i.get("role") not in _DROPPED_ROLES)
        items.extend(
            _as_input(item) for item in response.output if isinstance(item, OutputMessage | FunctionCallOutput)
        )
    return items


def _without_id(item: dict[str, Any]) -> dict[str, Any]:
    item.pop("id", None)
    return item


def _as_input(item: OutputMessage | FunctionCallOutput) -> dict[str, Any]:
    if isinstance(item, FunctionCallOutput):
        return {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments}
    return {"role": "assistant", "content": "".join(part.text for part in item.content)}
