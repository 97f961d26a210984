"""Where a request is served: the in-process engine, or the daemon over its socket.

Backends live on the engine loop and answer in OpenAI wire terms (JSON bytes, or SSE
bytes for streams); the httpx transport turns that into an HTTP response.  This module holds what
every backend shares; the engine's own backend is in :mod:`.in_process`, imported only by a client
that runs Codex itself (a daemon's client never loads the engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

import msgspec

from claif_cod.chained_stream import ChainedStream
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.unreadable import UNREADABLE

if TYPE_CHECKING:
    from claif_cod.openai_compat.options import RequestOptions
    from claif_cod.protocol import ConversationRequest
    from claif_cod.transport.stored_routes import StoredResponseAction

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
    stream: bool | None = False


class _ModelList(msgspec.Struct):
    data: list[msgspec.Raw]


class _ModelId(msgspec.Struct):
    id: str


_stream_flag = msgspec.json.Decoder(_StreamFlag)
_model_list = msgspec.json.Decoder(_ModelList)
_model_id = msgspec.json.Decoder(_ModelId)


def wants_stream(body: bytes) -> bool:
    try:
        return bool(_stream_flag.decode(body).stream)
    except UNREADABLE:
        return False  # let the full parser report the problem


def sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


def ignored_headers(ignored: tuple[str, ...]) -> dict[str, str]:
    """The names, comma-separated; a name a client made up (an unknown key of its body) is
    percent-encoded where it is not a plain name, so that no character of it can end the header or
    split the list (a newline in a header is refused as the response is sent)."""
    return {IGNORED_HEADER: ",".join(quote(name, safe="._-[]") for name in ignored)} if ignored else {}


def sse_event(payload: bytes) -> bytes:
    """One Responses stream event; OpenAI names each SSE event after its ``type``."""
    name = _event_type.decode(payload).type
    return b"event: " + name.encode() + b"\n" + sse(payload)


class _EventType(msgspec.Struct):
    type: str


_event_type = msgspec.json.Decoder(_EventType)


def pick_model(listing: JsonReply, model_id: str) -> JsonReply:
    """``GET /models/{id}``: that entry of a ``/models`` reply, or OpenAI's 404."""
    for model in _model_list.decode(listing.body).data:
        if _model_id.decode(model).id == model_id:
            return JsonReply(bytes(model))
    raise APIFailure.not_found(f"The model '{model_id}' does not exist", code="model_not_found")
