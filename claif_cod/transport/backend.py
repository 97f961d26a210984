"""Where a request is served: the in-process engine, or the daemon over its socket.

Backends live on the engine loop and answer in OpenAI wire terms (JSON bytes, or SSE
bytes for streams); the httpx transport turns that into an HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.engine import Engine
from claif_cod.openai_compat.conversations_service import ConversationsService
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_compact import compact
from claif_cod.openai_compat.responses_schema import ResponseEvent
from claif_cod.openai_compat.responses_service import ResponsesService
from claif_cod.openai_compat.schema import ModelList
from claif_cod.openai_compat.service import ChatService
from claif_cod.protocol import ConversationRequest
from claif_cod.transport.stored_routes import (
    StoredResponseAction,
    conversation_reply,
    stored_response_reply,
)

IGNORED_HEADER = "x-claif-cod-ignored-params"


@dataclass
class JsonReply:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamReply:
    """Server-sent events, already framed as ``data: ...\\n\\n`` lines, ending with ``[DONE]``."""

    events: ChainedStream[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    cut_short: Callable[[APIFailure], bytes] | None = None
    """The last events of a stream cut short by ``failure`` after it began; None: an ``{"error": ...}`` event."""


Reply = JsonReply | StreamReply


class Backend(Protocol):
    async def chat(self, body: bytes, options: RequestOptions) -> Reply: ...

    async def models(self, options: RequestOptions) -> JsonReply: ...

    async def responses(self, body: bytes, options: RequestOptions) -> Reply: ...

    async def retrieve_response(self, response_id: str, options: RequestOptions) -> JsonReply: ...

    async def compact(self, body: bytes, options: RequestOptions) -> JsonReply:
        """``responses.compact``: one turn, answered with OpenAI's ``CompactedResponse``."""

    async def stored_response(self, action: StoredResponseAction) -> JsonReply:
        """``responses.delete``, ``responses.cancel`` or ``responses.input_items.list`` of a stored response."""

    async def conversation(self, action: ConversationRequest) -> JsonReply:
        """A request of OpenAI's Conversations API."""

    async def aclose(self) -> None: ...


class _StreamFlag(msgspec.Struct):
    stream: bool = False


_stream_flag = msgspec.json.Decoder(_StreamFlag)
_model_list = msgspec.json.Decoder(ModelList)
_encoder = msgspec.json.Encoder()


def wants_stream(body: bytes) -> bool:
    try:
        return _stream_flag.decode(body).stream
    except msgspec.DecodeError:
        return False  # let the full parser report the problem


def sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"content-type": "text/event-stream"}


def ignored_headers(ignored: tuple[str, ...]) -> dict[str, str]:
    return {IGNORED_HEADER: ",".join(ignored)} if ignored else {}


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


def sse_event(payload: bytes) -> bytes:
    """One Responses stream event; OpenAI names each SSE event after its ``type``."""
    name = _event_type.decode(payload).type
    return b"event: " + name.encode() + b"\n" + sse(payload)


class _EventType(msgspec.Struct):
    type: str


_event_type = msgspec.json.Decoder(_EventType)


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


def pick_model(listing: JsonReply, model_id: str) -> JsonReply:
    """``GET /models/{id}``: that entry of a ``/models`` reply, or OpenAI's 404."""
    for model in _model_list.decode(listing.body).data:
        if model.id == model_id:
            return JsonReply(_encoder.encode(model))
    raise APIFailure.not_found(f"The model '{model_id}' does not exist", code="model_not_found")


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
