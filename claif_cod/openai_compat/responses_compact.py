"""``responses.compact``: a long conversation made short, for agents that keep their own history
(the Agents SDK's ``OpenAIResponsesCompactionSession``).

OpenAI answers with the conversation's user messages followed by one ``compaction`` item whose
encrypted content stands for everything else. claif_cod asks Codex for that summary: one turn on
the conversation (its ``input``, or the stored chain ``previous_response_id`` names, through
:class:`~.responses_service.ResponsesService` like any ``responses.create``) whose question is
:data:`.responses_compact_request.COMPACT_PROMPT` (that module reads the request). The summary
travels in the item, readable (base64 of JSON, not encrypted: claif_cod has no secret to keep it
from its own user), and a later request's input turns the item back into a message of its history
(:mod:`.compaction_item`), as Codex's own compaction does.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from claif_cod.engine.errors import EngineError, InvalidRequest
from claif_cod.openai_compat.compaction_item import compaction_item
from claif_cod.openai_compat.errors import translate
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_compact_request import own_input, read_compact, turn_body
from claif_cod.openai_compat.responses_items import listed_items
from claif_cod.openai_compat.responses_replay import chain_items
from claif_cod.openai_compat.responses_schema import OutputMessage, ResponseUsage

if TYPE_CHECKING:
    from claif_cod.openai_compat.responses_service import ResponsesService


class CompactedResponse(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    output: list[Any]
    usage: ResponseUsage | None
    object: Literal["response.compaction"] = "response.compaction"


_encoder = msgspec.json.Encoder()


async def compact(service: ResponsesService, body: bytes, options: RequestOptions) -> tuple[bytes, tuple[str, ...]]:
    """The ``CompactedResponse`` for ``body``, and the parameters that had no effect."""
    try:
        return await _compact(service, body, options)
    except Exception as exc:
        raise translate(exc) from exc


async def _compact(service: ResponsesService, body: bytes, options: RequestOptions) -> tuple[bytes, tuple[str, ...]]:
    request, ignored = read_compact(body)
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
    response, turn_ignored = await service.create(turn_body(request, strict=strict), options)
    replies = [item for item in response.output if isinstance(item, OutputMessage)]
    summary = "\n".join(part.text for item in replies for part in item.content)
    if response.status != "completed" or not summary.strip():
        # a summary cut short would stand for the whole conversation from then on: none is kept
        why = response.incomplete_details.reason if response.incomplete_details else "no text"
        raise EngineError(f"Codex's summary turn ended {response.status} ({why}): the conversation was not compacted")
    users = [
        i for i in [*earlier, *own_input(request)] if i.get("type", "message") == "message" and i.get("role") == "user"
    ]
    compacted = CompactedResponse(
        id=f"resp_{os.urandom(24).hex()}",
        created_at=int(time.time()),
        output=[*listed_items(users), compaction_item(summary)],
        usage=response.usage,
    )
    return _encoder.encode(compacted), tuple(sorted({*ignored, *turn_ignored}))
