"""Where a request is served: the in-process engine, or the daemon over its socket.

Backends live on the engine loop and answer in OpenAI wire terms (JSON bytes, or SSE
bytes for streams); the httpx transport turns that into an HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.engine.engine import Engine
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.responses_schema import ResponseEvent
from claif_cod.openai_compat.responses_service import ResponsesService
from claif_cod.openai_compat.schema import ModelList
from claif_cod.openai_compat.service import ChatService
from claif_cod.protocol import (
    ResponsesCancelRequest,
    ResponsesDeleteRequest,
    ResponsesInputItemsParams,
    ResponsesInputItemsRequest,
    ResponsesRetrieveParams,
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

    async def stored_response(self, action: StoredResponseAction) -> JsonReply:
        """``responses.delete``, ``responses.cancel`` or ``responses.input_items.list`` of a stored response."""

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


async def models_reply(service: ChatService, options: RequestOptions) -> JsonReply:
    return JsonReply(_encoder.encode(await service.models(options)))


def pick_model(listing: JsonReply, model_id: str) -> JsonReply:
    """``GET /models/{id}``: that entry of a ``/models`` reply, or OpenAI's 404."""
    for model in _model_list.decode(listing.body).data:
        if model.id == model_id:
            return JsonReply(_encoder.encode(model))
    detail = ErrorDetail(f"The model '{model_id}' does not exist", "invalid_request_error", "model_not_found")
    raise APIFailure("status", 404, detail)


StoredResponseAction = ResponsesDeleteRequest | ResponsesCancelRequest | ResponsesInputItemsRequest
"""The protocol's own request types say what to do with a stored response, in-process as on the socket."""


def stored_response_action(method: str, route: str, query: Mapping[str, str]) -> StoredResponseAction | None:
    """The action an HTTP route (``/responses/...`` below ``/v1``) asks of a stored response, if it is one;
    ``include`` in the query only asks for fields these items never have."""
    parts = route.split("/")  # "", "responses", id[, "input_items" | "cancel"]
    if len(parts) < 3 or parts[1] != "responses" or not parts[2]:
        return None
    params = ResponsesRetrieveParams(response_id=parts[2])
    if method == "DELETE" and len(parts) == 3:
        return ResponsesDeleteRequest(id=0, params=params)
    if method == "POST" and parts[3:] == ["cancel"]:
        return ResponsesCancelRequest(id=0, params=params)
    if method == "GET" and parts[3:] == ["input_items"]:
        limit = query.get("limit")
        if limit is not None and not limit.isdigit():
            raise APIFailure.bad_request("limit must be an integer", param="limit")
        order = query.get("order")
        if order not in (None, "asc", "desc"):
            raise APIFailure.bad_request("order must be 'asc' or 'desc'", param="order")
        query_params = ResponsesInputItemsParams(
            response_id=parts[2],
            after=query.get("after"),
            limit=None if limit is None else int(limit),
            order=order,  # type: ignore[arg-type]
        )
        return ResponsesInputItemsRequest(id=0, params=query_params)
    return None


def stored_response_reply(service: ResponsesService, action: StoredResponseAction) -> bytes:
    params = action.params
    if isinstance(action, ResponsesDeleteRequest):
        return service.delete(params.response_id)
    if isinstance(action, ResponsesCancelRequest):
        return service.cancel(params.response_id)
    query = action.params
    return service.input_items(query.response_id, after=query.after, limit=query.limit, order=query.order)


class InProcessBackend:
    """Runs the engine inside this process: no daemon needed."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or Engine()
        self.service = ChatService(self.engine)
        self.responses_service = ResponsesService(self.engine)

    async def chat(self, body: bytes, options: RequestOptions) -> Reply:
        return await chat_reply(self.service, body, options)

    async def responses(self, body: bytes, options: RequestOptions) -> Reply:
        return await responses_reply(self.responses_service, body, options)

    async def retrieve_response(self, response_id: str, options: RequestOptions) -> JsonReply:
        return JsonReply(self.responses_service.retrieve(response_id))

    async def stored_response(self, action: StoredResponseAction) -> JsonReply:
        return JsonReply(stored_response_reply(self.responses_service, action))

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
