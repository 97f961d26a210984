"""The engine's answers in HTTP terms: the in-process backend, and what ``claif-codd --http`` serves.

Imported only where Codex runs in this process (:mod:`.select` imports it on a client's first
in-process request, in a worker thread), so that a client of the daemon never loads the engine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.engine import Engine
from claif_cod.openai_compat.conversations_service import ConversationsService
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_compact import compact
from claif_cod.openai_compat.responses_schema import ResponseEvent
from claif_cod.openai_compat.responses_service import ResponsesService
from claif_cod.openai_compat.service import ChatService
from claif_cod.protocol import ConversationRequest
from claif_cod.transport.backend import (
    SSE_DONE,
    JsonReply,
    Reply,
    StreamReply,
    ignored_headers,
    sse,
    sse_event,
    wants_stream,
)
from claif_cod.transport.stored_routes import (
    StoredResponseAction,
    conversation_reply,
    stored_response_reply,
)

_encoder = msgspec.json.Encoder()


async def chat_reply(service: ChatService, body: bytes, options: RequestOptions) -> Reply:
    """A ``chat.completions`` request answered in HTTP terms (also what ``claif-codd --http`` serves)."""
    if not wants_stream(body):
        completion, ignored = await service.complete(body, options)
        return JsonReply(_encoder.encode(completion), ignored_headers(ignored))
    chunks, ignored = await service.stream(body, options)
    events = ChainedStream(_sse_events(chunks), chunks.aclose)
    await events.prefetch()  # the first chunk is there: its event is handed over with the reply
    return StreamReply(events, ignored_headers(ignored))


async def responses_reply(service: ResponsesService, body: bytes, options: RequestOptions) -> Reply:
    """A ``responses.create`` request answered in HTTP terms (SSE with named events when streamed)."""
    if not wants_stream(body):
        response, ignored = await service.create(body, options)
        return JsonReply(_encoder.encode(response), ignored_headers(ignored))
    stream = await service.stream(body, options)

    def cut_short(failure: APIFailure) -> bytes:
        events = stream.cut_short(failure.detail.message)
        return b"".join(sse_event(_encoder.encode(event)) for event in events)

    events = ChainedStream(_named_events(stream.events), stream.events.aclose)
    return StreamReply(events, ignored_headers(stream.ignored), cut_short)


async def _named_events(events: ChainedStream[ResponseEvent]) -> AsyncGenerator[bytes, None]:
    try:
        async for event in events:
            yield sse_event(_encoder.encode(event))
    finally:
        await events.aclose()


async def compact_reply(service: ResponsesService, body: bytes, options: RequestOptions) -> JsonReply:
    compacted, ignored = await compact(service, body, options)
    return JsonReply(compacted, ignored_headers(ignored))


async def models_reply(service: ChatService, options: RequestOptions) -> JsonReply:
    return JsonReply(_encoder.encode(await service.models(options)))


class InProcessBackend:
    """Runs the engine inside this process: no daemon needed."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or Engine()
        self.service = ChatService(self.engine)
        self.conversations = ConversationsService()
        self.responses_service = ResponsesService(self.engine, conversations=self.conversations)

    async def chat(self, body: bytes, options: RequestOptions) -> Reply:
        return await chat_reply(self.service, body, options)

    async def responses(self, body: bytes, options: RequestOptions) -> Reply:
        return await responses_reply(self.responses_service, body, options)

    async def retrieve_response(self, response_id: str, options: RequestOptions) -> JsonReply:
        return JsonReply(self.responses_service.retrieve(response_id))

    async def compact(self, body: bytes, options: RequestOptions) -> JsonReply:
        return await compact_reply(self.responses_service, body, options)

    async def stored_response(self, action: StoredResponseAction) -> JsonReply:
        return JsonReply(stored_response_reply(self.responses_service, action))

    async def conversation(self, action: ConversationRequest) -> JsonReply:
        return JsonReply(conversation_reply(self.conversations, action))

    async def models(self, options: RequestOptions) -> JsonReply:
        return await models_reply(self.service, options)

    async def aclose(self) -> None:
        await self.engine.close()


async def _sse_events(chunks: ChainedStream[msgspec.Struct]) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in chunks:
            yield sse(_encoder.encode(chunk))
        yield SSE_DONE
    finally:
        await chunks.aclose()
