"""One frame body <-> one message struct, with every malformed input mapped to its JSON-RPC error.

Decoding is two passes over the body. The first reads a loose envelope (``jsonrpc``, ``id``,
``method``; ``params`` skipped, ``result`` kept raw) so that a request with an unknown method or
bad params still yields its ``id`` for the error reply. The second validates the whole message
against the struct registered for its method, so msgspec's error paths read ``$.params.…``.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from claif_cod.unreadable import UNREADABLE, unreadable_reason

from .errors import (
    ErrorObject,
    InvalidParams,
    InvalidRequest,
    InvalidResult,
    MethodNotFound,
    ParseError,
    ProtocolError,
    RequestId,
)
from .messages import METHODS, ErrorResponse, Message, Notification, Request, Response

__all__ = ["decode", "decode_result", "encode"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


def encode(message: Request | Notification | Response[Any] | ErrorResponse) -> bytes:
    """The JSON body of ``message``; wrap it with ``framing.encode_frame`` to send it."""
    return _encoder.encode(message)


class _Envelope(msgspec.Struct):
    jsonrpc: str | UnsetType = UNSET
    id: RequestId | UnsetType | None = UNSET
    method: str | UnsetType = UNSET
    result: msgspec.Raw | UnsetType = UNSET
    error: ErrorObject | UnsetType = UNSET


class _IdProbe(msgspec.Struct):
    id: RequestId | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_id_decoder = msgspec.json.Decoder(_IdProbe)
_method_decoders: dict[str, msgspec.json.Decoder[Request | Notification]] = {
    name: msgspec.json.Decoder(spec.message_type) for name, spec in METHODS.items()
}


def decode(body: bytes) -> Message:
    """Parse one frame body; raises only ``ProtocolError`` subclasses, carrying the id when known."""
    try:
        # Also inside members that are ignored, which msgspec skips unchecked.  An ASCII body (most
        # requests; an image's base64) is valid UTF-8, and checked ~10x faster than by decoding.
        if not body.isascii():
            body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not valid UTF-8 at byte {exc.start}", request_id=_probe_id(body)) from None
    envelope = _decode_envelope(body)
    if envelope.jsonrpc != "2.0":
        raise InvalidRequest('"jsonrpc" must be "2.0"', request_id=_known_id(envelope.id))
    if isinstance(envelope.method, UnsetType):
        return _decode_reply(envelope)
    return _decode_method(body, envelope.method, envelope.id)


def decode_as_client(body: bytes) -> Message | None:
    """:func:`decode` for a client: None for a notification it cannot read (a method, or a value, that
    a newer daemon added), which needs no answer and is skipped (see docs/protocol.md, "Versioning");
    anything else it cannot read raises, as then the connection's state is in doubt."""
    try:
        return decode(body)
    except ProtocolError as exc:
        if exc.notification:
            return None
        raise


def decode_result(result: msgspec.Raw, result_type: type[T]) -> T:
    """Decode a ``Response.result`` as ``result_type`` (the method's ``METHODS[...].result_type``)."""
    try:
        return msgspec.json.decode(result, type=result_type)
    except UNREADABLE as exc:
        raise InvalidResult(f"result is not a valid {result_type.__name__}: {exc}") from exc


def _decode_envelope(body: bytes) -> _Envelope:
    try:
        return _envelope_decoder.decode(body)
    except msgspec.ValidationError as exc:
        syntax = _syntax_error(body)  # msgspec refuses an array as it opens, before reading its syntax
        if syntax is not None:
            raise ParseError(unreadable_reason(syntax, body), request_id=None) from exc
        raise InvalidRequest(str(exc), request_id=_probe_id(body)) from exc
    except UNREADABLE as exc:
        raise ParseError(unreadable_reason(exc, body), request_id=_probe_id(body)) from exc


def _syntax_error(body: bytes) -> Exception | None:
    """Why a body that is not a message is not JSON either (PARSE_ERROR), or None (INVALID_REQUEST)."""
    try:
        msgspec.json.decode(body)
    except UNREADABLE as exc:
        return exc
    return None


def _probe_id(body: bytes) -> RequestId | None:
    """Best-effort id of a message whose envelope didn't validate (or didn't parse at all)."""
    try:
        return _id_decoder.decode(body).id
    except msgspec.ValidationError:
        return None  # it parsed: the id itself is wrong
    except UNREADABLE:
        return _scan_id(body)


def _scan_id(body: bytes) -> RequestId | None:
    """The top-level ``"id"`` of a body msgspec cannot parse (nested too deep, a bad escape elsewhere):
    a scan that only tracks strings and depth, so it never recurses."""
    depth, i, n = 0, 0, len(body)
    while i < n:
        c = body[i]
        if c == 0x22:  # a string: skip it, noting whether it is the key "id" at the top level
            end = i + 1
            while end < n and body[end] != 0x22:
                end += 2 if body[end] == 0x5C else 1
            if depth == 1 and body[i + 1 : end] == b"id":
                rest = body[end + 1 :].lstrip()
                if rest[:1] == b":":
                    value = re.match(rb'\s*(-?\d+(?=\s*[,}])|"(?:[^"\\]|\\.)*")', rest[1:])
                    if value is not None:
                        try:
                            return _id_decoder.decode(b'{"id":' + value.group(1) + b"}").id
                        except UNREADABLE:
                            return None
            i = end + 1
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
        i += 1
    return None


def _known_id(raw_id: RequestId | UnsetType | None) -> RequestId | None:
    return None if isinstance(raw_id, UnsetType) else raw_id


def _decode_reply(envelope: _Envelope) -> Response[msgspec.Raw] | ErrorResponse:
    request_id, result, error = _known_id(envelope.id), envelope.result, envelope.error
    if not isinstance(error, UnsetType):
        if not isinstance(result, UnsetType):
            raise InvalidRequest('a response has either "result" or "error", not both', request_id=request_id)
        if isinstance(envelope.id, UnsetType):
            raise InvalidRequest('an error response needs an "id" (null when unknown)')
        return ErrorResponse(id=envelope.id, error=error)
    if isinstance(result, UnsetType):
        raise InvalidRequest('a message needs "method", "result" or "error"', request_id=request_id)
    if request_id is None:
        raise InvalidRequest('a successful response needs a non-null "id"')
    return Response(id=request_id, result=result)


def _decode_method(body: bytes, method: str, raw_id: RequestId | UnsetType | None) -> Request | Notification:
    request_id, has_id = _known_id(raw_id), not isinstance(raw_id, UnsetType)
    spec = METHODS.get(method)
    if spec is None:
        shown = repr(method[:100]) + ("..." if len(method) > 100 else "")  # the reply must stay small
        raise MethodNotFound(f"unknown method {shown}", request_id=request_id, notification=not has_id)
    if spec.is_notification and has_id:
        raise InvalidRequest(f'{method!r} is a notification and must not have an "id"', request_id=request_id)
    if not spec.is_notification and request_id is None:
        raise InvalidRequest(f'{method!r} is a request and needs an integer or string "id"')
    try:
        return _method_decoders[method].decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidParams(str(exc), request_id=request_id, notification=spec.is_notification) from exc
    except UNREADABLE as exc:
        raise ParseError(str(exc), request_id=request_id, notification=spec.is_notification) from exc
