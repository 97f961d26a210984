"""Requests that cannot be parsed get an OpenAI error body and one warning, like every other bad request.

aiohttp answers a request it cannot parse (a NUL in a header, an over-long header line, two ``Host``
headers, a bad request line, a broken chunked body) itself, before any middleware runs, with a
plain-text 400 and an error-level traceback; it has no public hook for that (aio-libs/aiohttp#3287).
That answer is built by ``RequestHandler.handle_error``, so our connections use a handler class that
overrides that method, put in place by :class:`JsonErrorRunner`. A body that turns out broken after
its handler began reading it (a bad chunk arriving late) is an error aiohttp queues behind the
request while the handler waits for the rest of a body that never comes; the handler here hands that
error to the body instead, and the middleware answers it with :func:`unparsable`. A body aiohttp reads
only after the answer (the rest of one its handler left unread) may break too, and aiohttp logs that
as an error with a traceback; here it is a throttled warning, since the body is its client's fault.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import _ErrInfo

from claif_cod._log import MAX_VALUE_CHARS, get_logger
from claif_codd.http.admission import IDLE_TIMEOUT_S, Admission
from claif_codd.http.log_throttle import LogThrottle
from claif_codd.http.responses import error_response, new_request_id

log = get_logger("claif_codd.http")


_QUOTED = re.compile(r"""\s*(?::|\bb?['"]).*""", re.DOTALL)
"""Where an aiohttp reason starts quoting the client's bytes (``Invalid header value char: b'...'``,
``Bad status line '...'``): a header, a request line or a body, with whatever keys or prompt text
they hold."""


_STATUS_PREFIX = re.compile(r"^\d{3}, message: ")
"""How ``str()`` of aiohttp's ``HttpProcessingError`` begins (``400, message:\n  Can not decode
content-encoding: gzip``), which a body's error (``RequestPayloadError``) carries as its own."""


def plain(reason: str) -> str:
    """An aiohttp reason on one line, without the status it may begin with."""
    return _STATUS_PREFIX.sub("", " ".join(reason.split()))


def described(reason: str) -> str:
    """An aiohttp reason without the client's bytes it quotes: what the log may keep."""
    return _QUOTED.sub("", plain(reason)) or "unreadable request"


SUPPORTED_CODINGS = "send the body as it is, or with Content-Encoding gzip or deflate"
"""What a client is told whose body's ``Content-Encoding`` this aiohttp cannot decode (br, zstd: each
needs a package of its own), rather than aiohttp's advice to install that package."""

_UNPARSABLE = LogThrottle()
_BROKEN_LEFTOVERS = LogThrottle()


def unparsable(request: web.BaseRequest, status: int, reason: str, request_id: str | None = None) -> web.Response:
    """The answer to a request we could not read, logged as a warning (it is the client's fault; with
    how many since the last one logged, at most one a minute).
    The client is told aiohttp's whole reason, its own bytes included; the log keeps only what went wrong.
    ``request_id``: the one the middleware gave a request it began to handle, else a new one."""
    request_id = request_id or new_request_id()
    reason = plain(reason)[:MAX_VALUE_CHARS]
    code = {431: "request_header_too_large", 415: "unsupported_content_encoding"}.get(status, "malformed_request")
    if (count := _UNPARSABLE.due()) is not None:  # anyone may send thousands a second: a line a minute
        log.warning(
            "http.unparsable_request",
            request=request_id,
            status=status,
            reason=described(reason),
            peer=request.remote,
            count=count,
        )
    response = error_response(
        status,
        f"claif-codd could not parse this HTTP request: {reason}",
        "invalid_request_error",
        code,
        {"x-request-id": request_id, **({"Accept-Encoding": "gzip, deflate"} if status == 415 else {})},
    )
    response.force_close()  # what follows on the connection cannot be trusted to start a new request
    return response


class JsonErrorHandler(web.RequestHandler):
    """aiohttp's connection handler, answering with OpenAI error bodies instead of plain text, on a
    connection its server's :class:`~claif_codd.http.admission.Admission` admitted."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert isinstance(self._manager, _Server)
        self._manager.admission.admit(self, transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        assert isinstance(self._manager, _Server)
        self._manager.admission.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        request = self._current_request
        if request is None or request.content.is_eof() or len(self._messages) == queued:
            return
        error = self._messages[-1][0]
        if isinstance(error, _ErrInfo):  # the body being read broke: fail its read rather than wait forever
            request.content.set_exception(web.RequestPayloadError(error.message))
            request.content.feed_eof()  # nothing more will come: aiohttp must not wait to drain it afterwards

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp reads what a handler left of a request's body once it has answered, and reports a
        body that breaks then (not the gzip its ``Content-Encoding`` says) as an unhandled exception:
        an error record with a traceback, for a request anyone may send (unread, answered 401 or 403).
        Its client has its answer; the log gets a warning, at most one a minute."""
        exc = kw.get("exc_info")
        if not isinstance(exc, web.RequestPayloadError):
            super().log_exception(*args, **kw)
            return
        if (count := _BROKEN_LEFTOVERS.due()) is not None:
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            log.warning(
                "http.unread_body_broken",
                reason=described(str(exc)),
                peer=peer[0] if peer else None,
                count=count,
            )

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        request_id = new_request_id()
        if status >= 500:  # a handler raised something unexpected, or timed out: our bug, not the client's
            log.error("http.handler_failed", request=request_id, status=status, exc_info=exc)
        if request.writer.output_size > 0:  # as aiohttp: the answer has begun, the connection is broken
            raise ConnectionError("the response had begun; cannot send an error instead")
        if status >= 500:
            message = "claif-codd failed to answer this request; see its log"
            response = error_response(status, message, "server_error", headers={"x-request-id": request_id})
            response.force_close()
            return response
        if isinstance(exc, LineTooLong):
            status = 431
        reason = exc.message if isinstance(exc, HttpProcessingError) else message or "bad request"
        if isinstance(exc, ContentEncodingError):  # met at the head: a coding aiohttp has no package for
            status, reason = 415, f"{described(reason)}: {SUPPORTED_CODINGS}"  # (not "Please install Brotli")
        return unparsable(request, status, reason, request_id)


class _Server(web.Server):
    admission: Admission

    def __call__(self) -> web.RequestHandler:
        handler = super().__call__()
        handler.__class__ = JsonErrorHandler  # a subclass with no slots of its own: only methods differ
        return handler


class JsonErrorRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are :class:`JsonErrorHandler`\\ s, admitted by ``admission``."""

    def __init__(self, app: web.Application, admission: Admission, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=IDLE_TIMEOUT_S, **kwargs)
        self._admission = admission

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # only the connection factory differs, and what admits connections
        assert isinstance(server, _Server)
        server.admission = self._admission
        return server
