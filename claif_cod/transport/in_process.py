"""The engine's answers in HTTP terms: the in-process backend, and what ``claif-codd --http`` serves.

Imported only where Codex runs in this process (:mod:`.select` imports it on a client's first
in-process request, in a worker thread), so that a client of the daemon never loads the engine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class StreamStart:
    """A streamed request read, its turn yet to begin: its headers (the parameters it ignores) are
    known before its first event, so that ``claif-codd --http`` can begin a stream whose first event
    is late (a turn silent at its start), and end it with an event should the turn then fail."""

    headers: dict[str, str]
    begin: Callable[[], Awaitable[StreamReply]]
    """The stream, once its first event is there; a failure before it raises here."""
    cut_short: Callable[[APIFailure], bytes] | None = None
    """The last events of a stream cut short by ``failure`` after it began; None: an ``{"error": ...}`` event."""


async def chat_reply(service: ChatService, body: bytes, options: RequestOptions) -> Reply:
    """A ``chat.completions`` request answered in HTTP terms."""
    if not wants_stream(body):
        return await chat_json(service, body, options)
    return await chat_stream(service, body, options).begin()


async def chat_json(service: ChatService, body: bytes, options: RequestOptions) -> JsonReply:
    completion, ignored = await service.complete(body, options)
    return JsonReply(_encoder.encode(completion), ignored_headers(ignored))


def chat_stream(service: ChatService, body: bytes, options: RequestOptions) -> StreamStart:
    parsed = service.parse(body, options)
    headers = ignored_headers(parsed.ignored)

    async def begin() -> StreamReply:
        chunks = await service.stream_parsed(parsed, options)
        events = ChainedStream(_sse_events(chunks), chunks.aclose)
        await events.prefetch()  # the first chunk is there: its event is handed over with the reply
        return StreamReply(events, headers)

    return StreamStart(headers, begin)


async def responses_reply(service: ResponsesService, body: bytes, options: RequestOptions) -> Reply:
    """A ``responses.create`` request answered in HTTP terms (SSE with named events when streamed)."""
    if not wants_stream(body):
        return await responses_json(service, body, options)
    return await responses_stream(service, body, options).begin()


async def responses_json(service: ResponsesService, body: bytes, options: RequestOptions) -> JsonReply:
    response, ignored = await service.create(body, options)
    return JsonReply(_encoder.encode(response), ignored_headers(ignored))


def responses_stream(service: ResponsesService, body: bytes, options: RequestOptions) -> StreamStart:
    run = service.open(body, options, streaming=True)
    headers = ignored_headers(run.parsed.ignored)

    async def begin() -> StreamReply:
        stream = await service.stream_run(run)
        return StreamReply(ChainedStream(_named_events(stream.events), stream.events.aclose), headers)

    def cut_short(failure: APIFailure) -> bytes:
        events = run.cut_short(failure.detail.message)
        return b"".join(sse_event(_encoder.encode(event)) for event in events)

    return StreamStart(headers, begin, cut_short)


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
        return JsonReply(await conversation_reply(self.conversations, action))

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
