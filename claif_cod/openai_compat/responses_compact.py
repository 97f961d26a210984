"""``responses.compact``: a long conversation made short, for agents that keep their own history
(the Agents SDK's ``OpenAIResponsesCompactionSession``).

OpenAI answers with the conversation's user messages followed by one ``compaction`` item whose
encrypted content stands for everything else. claif_cod asks Codex for that summary: one turn on
the conversation (its ``input``, or the stored chain ``previous_response_id`` names, through
:class:`~.responses_service.ResponsesService` like any ``responses.create``) whose question is
:data:`COMPACT_PROMPT`. The summary travels in the item, readable (base64 of JSON, not encrypted:
claif_cod has no secret to keep it from its own user), and a later request's input turns the item
back into a message of its history (:mod:`.compaction_item`), as Codex's own compaction does.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from claif_cod.engine.errors import READING_BODY, EngineError, InvalidRequest
from claif_cod.openai_compat.compaction_item import compaction_item
from claif_cod.openai_compat.errors import translate
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_items import listed_items
from claif_cod.openai_compat.responses_replay import chain_items
from claif_cod.openai_compat.responses_request import responses_ignored
from claif_cod.openai_compat.responses_schema import OutputMessage, ResponseUsage

if TYPE_CHECKING:
    from claif_cod.openai_compat.responses_service import ResponsesService

COMPACT_PROMPT = (
    "Compact this conversation: write a summary of everything above that lets the work go on without "
    "it. Keep the goals and constraints the user gave, the decisions taken, what has been done and "
    "found (files, commands, results), what is still open, and the next steps. Answer with the summary "
    "alone."
)
HONOURED = frozenset({"model", "input", "instructions", "previous_response_id", "strict"})
NO_EFFECT = frozenset({"safety_identifier"})
"""As for ``responses.create``: never changes an answer. Every other key is reported."""


class _CompactBody(msgspec.Struct):
    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    strict: bool | None = None


class CompactedResponse(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    output: list[Any]
    usage: ResponseUsage | None
    object: Literal["response.compaction"] = "response.compaction"


_encoder = msgspec.json.Encoder()
_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])


async def compact(service: ResponsesService, body: bytes, options: RequestOptions) -> tuple[bytes, tuple[str, ...]]:
    """The ``CompactedResponse`` for ``body``, and the parameters that had no effect."""
    try:
        return await _compact(service, body, options)
    except Exception as exc:
        raise translate(exc) from exc


def compact_ignored(body: bytes) -> tuple[str, ...]:
    """What :func:`compact` reports as ignored, for a daemon client (the daemon checks the request)."""
    try:
        request, ignored = _read(body)
    except InvalidRequest:
        return ()
    return tuple(sorted({*ignored, *responses_ignored(_turn_body(request, strict=False))}))


def _read(body: bytes) -> tuple[_CompactBody, list[str]]:
    with READING_BODY:
        request = msgspec.json.decode(body, type=_CompactBody)
        keys = _top_level.decode(body)
    return request, sorted(key for key in keys if key not in HONOURED and key not in NO_EFFECT)


def _turn_body(request: _CompactBody, *, strict: bool) -> bytes:
    """The ``responses.create`` body of the turn that writes the summary."""
    turn = {
        "model": request.model,
        "instructions": request.instructions,
        "previous_response_id": request.previous_response_id,
        "input": [*_own(request), {"role": "user", "content": COMPACT_PROMPT}],
        "store": False,
        "strict": strict,
    }
    return _encoder.encode(turn)


def _own(request: _CompactBody) -> list[dict[str, Any]]:
    return [{"role": "user", "content": request.input}] if isinstance(request.input, str) else request.input or []


async def _compact(service: ResponsesService, body: bytes, options: RequestOptions) -> tuple[bytes, tuple[str, ...]]:
    request, ignored = _read(body)
    strict = options.strict if request.strict is None else request.strict
    if strict and ignored:
        names = ", ".join(ignored)
        raise InvalidRequest(f"strict mode: Codex cannot honour {names} (see docs/parameters.md)", param=ignored[0])
    earlier: list[dict[str, Any]] = []
    if request.previous_response_id is not None:
        found = chain_items(service.store, request.previous_response_id)
        if found is None:
            message = (
                f"Previous response with id '{request.previous_response_id}' not found, or a response of its "
                "chain is gone; send the conversation as input instead"
            )
            raise InvalidRequest(message, param="previous_response_id")
        earlier = found
    elif not request.input:
        raise InvalidRequest("input or previous_response_id is required", param="input")
    response, turn_ignored = await service.create(_turn_body(request, strict=strict), options)
    replies = [item for item in response.output if isinstance(item, OutputMessage)]
    summary = "\n".join(part.text for item in replies for part in item.content)
    if response.status != "completed" or not summary.strip():
        # a summary cut short would stand for the whole conversation from then on: none is kept
        why = response.incomplete_details.reason if response.incomplete_details else "no text"
        raise EngineError(f"Codex's summary turn ended {response.status} ({why}): the conversation was not compacted")
    users = [i for i in [*earlier, *_own(request)] if i.get("type", "message") == "message" and i.get("role") == "user"]
    compacted = CompactedResponse(
        id=f"resp_{os.urandom(24).hex()}",
        created_at=int(time.time()),
        output=[*listed_items(users), compaction_item(summary)],
        usage=response.usage,
    )
    return _encoder.encode(compacted), tuple(sorted({*ignored, *turn_ignored}))
