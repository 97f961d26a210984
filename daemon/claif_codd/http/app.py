"""``claif-codd serve --http``: the OpenAI REST API on the daemon's own loop, engine and sessions.

Routes: ``POST /v1/chat/completions`` (JSON, or SSE ending in ``data: [DONE]``), ``POST /v1/responses``
(JSON, or SSE of named Responses events), ``POST /v1/responses/compact``, ``GET``/``DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items``, ``POST /v1/responses/{id}/cancel``, OpenAI's Conversations
API (``/v1/conversations...``), ``GET /v1/models``,
``GET /v1/models/{id}`` and ``GET /healthz``. A request runs exactly as a socket client's would
(the same :class:`ChatService` and :class:`ResponsesService`), with these per-request settings
taken from headers:

* ``X-Claif-Cod-Working-Dir``: where Codex runs (default ``--http-working-dir``);
* ``X-Claif-Cod-Sandbox`` and ``X-Claif-Cod-Approval-Policy``: as ``CodexClient``'s ``sandbox_mode`` and
  ``approval_policy`` (default: Codex's own configuration);
* ``X-Stainless-Read-Timeout`` (the Python ``openai`` SDK's) or ``X-Stainless-Timeout`` (the Node SDK's):
  the turn is interrupted when the client would give up anyway.

A client that disconnects cancels its request, which interrupts its turn. Load limits and shutdown
behave as on the socket: turns count against ``max_turns_in_flight``, a draining daemon answers 503
with ``Retry-After``, and requests still running at the drain deadline end with that error (an SSE
error event when the stream had begun). Nobody can be asked about approvals over HTTP, so Codex's
approval requests are declined.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from claif_cod._log import get_logger
from claif_cod._version import __version__
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.transport.backend import JsonReply, pick_model, wants_stream
from claif_cod.transport.in_process import (
    StreamStart,
    chat_json,
    chat_stream,
    compact_reply,
    models_reply,
    responses_json,
    responses_stream,
)
from claif_cod.transport.stored_routes import (
    check_retrieve_query,
    conversation_action,
    conversation_reply,
    stored_response_action,
    stored_response_reply,
)
from claif_codd.http import body as bodies
from claif_codd.http.admission import Admission
from claif_codd.http.guard import make_guard
from claif_codd.http.parse_errors import SUPPORTED_CODINGS, JsonErrorRunner, unparsable
from claif_codd.http.request_options import request_options
from claif_codd.http.responses import error_response, failure_response, json_response, new_request_id
from claif_codd.http.settings import HttpSettings, http_url
from claif_codd.http.sse_stream import serve_stream

if TYPE_CHECKING:
    from claif_codd.host import DaemonHost

log = get_logger("claif_codd.http")

UNTRACKED_PATHS = frozenset({"/healthz"})
"""Requests that never hold up a drain."""
CLOSE_TIMEOUT_S = 5.0

_encoder = msgspec.json.Encoder()


class _Health(msgspec.Struct):
    status: str
    version: str
    pid: int


class HttpEndpoint:
    def __init__(self, daemon: DaemonHost[Any], settings: HttpSettings) -> None:
        self.daemon = daemon
        self.settings = settings
        self.requests: set[asyncio.Task[object]] = set()
        """Handlers in flight (``/healthz`` aside): what a drain waits for."""
        self._cancel_reasons: dict[asyncio.Task[object], APIFailure] = {}
        self._runner: JsonErrorRunner | None = None
        self._site: web.TCPSite | None = None
        self.address: tuple[str, int] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        admission = Admission(
            own_uid_only=self.settings.token is None, max_connections=self.daemon.config.max_connections
        )
        app = web.Application(
            middlewares=[self._errors_and_tracking, make_guard(self.settings, admission)],
            client_max_size=self.daemon.config.max_frame_size,
        )
        conversation, item = "/v1/conversations/{conversation_id}", "/v1/conversations/{conversation_id}/items"
        routes = [
            ("POST", "/v1/chat/completions", self.chat),
            ("POST", "/v1/responses", self.responses),
            ("POST", "/v1/responses/compact", self.compact),
            ("GET", "/v1/responses/{response_id}", self.retrieve_response),
            ("DELETE", "/v1/responses/{response_id}", self.stored_response),
            ("POST", "/v1/responses/{response_id}/cancel", self.stored_response),
            ("GET", "/v1/responses/{response_id}/input_items", self.stored_response),
            ("POST", "/v1/conversations", self.conversation),
            ("GET", conversation, self.conversation),
            ("DELETE", conversation, self.conversation),
            ("GET", item + "/{item_id}", self.conversation),
            ("DELETE", item + "/{item_id}", self.conversation),
            ("POST", conversation, self.conversation),
            ("GET", item, self.conversation),
            ("POST", item, self.conversation),
            ("GET", "/v1/models", self.models),
            ("GET", "/v1/models/{model}", self.model),
            ("GET", "/healthz", self.healthz),
        ]
        add = {"GET": app.router.add_get, "POST": app.router.add_post, "DELETE": app.router.add_delete}
        for method, path, handler in routes:  # (add_get answers a HEAD too, as aiohttp does)
            add[method](path, handler, expect_handler=bodies.expect_later)  # Expect: 100-continue is read_body's
        app.on_response_prepare.append(_with_request_id)
        self._runner = JsonErrorRunner(
            app,
            admission,
            handle_signals=False,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=CLOSE_TIMEOUT_S,
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await self._site.start()
        host, port = self._runner.addresses[0][:2]
        self.address = (host, port)
        log.info("http.listening", host=host, port=port, token=self.settings.token is not None)

    async def stop_accepting(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    def cancel_requests(self, message: str) -> list[asyncio.Task[object]]:
        """Ends every request still running, each answered with a retryable 503 saying ``message``."""
        reason = overloaded(message)
        for task in self.requests:
            self._cancel_reasons[task] = reason
            task.cancel()
        return list(self.requests)

    async def close(self) -> None:
        await self.stop_accepting()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str | None:
        if self.address is None:
            return None
        return http_url(*self.address)

    # --- middleware ----------------------------------------------------------------------------

    @web.middleware
    async def _errors_and_tracking(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every failure as an OpenAI error body; in-flight requests tracked for the drain."""
        task: asyncio.Task[object] | None = asyncio.current_task()
        tracked = task is not None and request.path not in UNTRACKED_PATHS
        request_id = new_request_id()
        naming = _request_id.set(request_id)
        if tracked:
            assert task is not None
            self.requests.add(task)
        started = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return _named(response, request_id)
        except APIFailure as failure:
            response = failure_response(failure, _retry_after(failure))
            status = response.status
            return _named(response, request_id)
        except web.RequestPayloadError as exc:  # a body that broke after its handler began reading it
            response = unparsable(request, 400, str(exc), request_id)
            request.content.feed_eof()  # said: aiohttp is not to read the rest after the answer, and fail again
            status = response.status
            return _named(response, request_id)
        except web.HTTPException as exc:
            status = exc.status
            message = exc.reason
            if exc.status in (404, 405):  # as the in-process client answers: name what is not served
                message = f"claif_cod does not implement {request.method} {request.path[:MAX_PATH_IN_ERROR]}"
            elif exc.status == 413:  # as a socket client is told
                limit = self.daemon.config.max_frame_size
                message = f"The request is larger than {limit} bytes, the most claif-codd takes (send less)"
            elif exc.status == 408:  # read_body: the rest of the body is not to be waited for
                message = f"The request's body stopped coming: nothing of it came for {bodies.BODY_SILENCE_S:g} s"
            elif exc.status == 417:  # read_body
                message = "claif-codd meets no expectation but Expect: 100-continue"
            elif exc.status == 415:  # read_body: a body in a coding nobody decoded
                coding = request.headers.get("Content-Encoding", "")[:MAX_PATH_IN_ERROR]
                message = f"claif-codd cannot decode Content-Encoding {coding!r}: {SUPPORTED_CODINGS}"
            allowed = exc.headers.get("Allow")  # a 405 names the methods the path takes, as HTTP asks
            headers = {"Allow": allowed} if allowed else None
            if exc.status == 415:
                headers = {"Accept-Encoding": "gzip, deflate"}
            answer = error_response(exc.status, message, "invalid_request_error", _http_code(exc.status), headers)
            if exc.status == 408:
                answer.force_close()  # whatever of the body still comes is not a request
            return _named(answer, request_id)
        except asyncio.CancelledError:
            reason = self._claim_cancellation(task)
            if reason is None:
                status = 499  # the client went away
                raise
            response = failure_response(reason, _retry_after(reason))
            status = response.status
            return _named(response, request_id)
        finally:
            _request_id.reset(naming)
            if tracked:
                assert task is not None
                self.requests.discard(task)
                self._cancel_reasons.pop(task, None)
                self.daemon.touch()  # HTTP traffic keeps an --idle-timeout daemon alive, like socket clients
            log.debug(
                "http.request",
                request=request_id,
                method=request.method,
                path=request.path,
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
            )

    # --- routes --------------------------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        service = self.daemon.service
        return await self._turn(request, partial(chat_json, service), partial(chat_stream, service))

    async def responses(self, request: web.Request) -> web.StreamResponse:
        service = self.daemon.responses
        return await self._turn(request, partial(responses_json, service), partial(responses_stream, service))

    async def compact(self, request: web.Request) -> web.StreamResponse:
        return await self._turn(request, partial(compact_reply, self.daemon.responses))

    async def _turn(
        self,
        request: web.Request,
        whole: Callable[[bytes, RequestOptions], Awaitable[JsonReply]],
        streamed: Callable[[bytes, RequestOptions], StreamStart] | None = None,
    ) -> web.StreamResponse:
        """A request that runs a Codex turn: refused while the daemon cannot take one, counted while it runs."""
        daemon = self.daemon
        self._refuse_when_unable(turn=True)  # before its body is read, when it can be
        body = await bodies.read_body(request)
        # and again: others may have been counted while it arrived (no await from here to the count)
        self._refuse_when_unable(turn=True)
        options = request_options(request, self.settings, _log_warning)
        daemon.turn_requests += 1
        try:
            if streamed is None or not wants_stream(body):
                reply = await whole(body, options)
                return json_response(reply.body, headers=reply.headers)
            return await serve_stream(
                request,
                streamed(body, options),
                keepalive=self.settings.sse_keepalive or None,
                max_outbound_bytes=daemon.config.max_outbound_bytes,
                drop=lambda pending: _drop(request, pending),
                claim_cancellation=lambda: self._claim_cancellation(asyncio.current_task()),
            )
        finally:
            daemon.turn_requests -= 1

    async def retrieve_response(self, request: web.Request) -> web.StreamResponse:
        self._refuse_when_unable(turn=False)
        check_retrieve_query(list(request.query.items()))
        return json_response(self.daemon.responses.retrieve(request.match_info["response_id"]))

    async def stored_response(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /v1/responses/{id}``, ``POST .../cancel``, ``GET .../input_items``."""
        self._refuse_when_unable(turn=False)
        action = stored_response_action(
            _method(request), request.rel_url.raw_path.removeprefix("/v1"), list(request.query.items())
        )
        assert action is not None  # the router only sends these routes here
        return json_response(stored_response_reply(self.daemon.responses, action))

    async def conversation(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's Conversations API (``/v1/conversations...``)."""
        self._refuse_when_unable(turn=False)
        body = await bodies.read_body(request)
        route = request.rel_url.raw_path.removeprefix("/v1")
        action = conversation_action(_method(request), route, list(request.query.items()), body)
        assert action is not None  # the router only sends these routes here
        return json_response(await conversation_reply(self.daemon.conversations, action))

    async def models(self, request: web.Request) -> web.StreamResponse:
        self._refuse_when_unable(turn=False)
        reply = await models_reply(self.daemon.service, request_options(request, self.settings, _log_warning))
        return json_response(reply.body)

    async def model(self, request: web.Request) -> web.StreamResponse:
        self._refuse_when_unable(turn=False)
        listing = await models_reply(self.daemon.service, request_options(request, self.settings, _log_warning))
        return json_response(pick_model(listing, request.match_info["model"]).body)

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        status = "draining" if self.daemon.draining else "ok"
        body = _encoder.encode(_Health(status=status, version=__version__, pid=os.getpid()))
        return json_response(body, status=503 if self.daemon.draining else 200)

    # --- helpers -------------------------------------------------------------------------------

    def _claim_cancellation(self, task: asyncio.Task[object] | None) -> APIFailure | None:
        """The answer owed for a cancellation ``cancel_requests`` made, which the task then goes on to send;
        None when someone else cancelled it (the client went away): that one must propagate."""
        reason = self._cancel_reasons.get(task) if task is not None else None
        if reason is not None and task is not None and sys.version_info >= (3, 11):
            task.uncancel()
        return reason

    def _refuse_when_unable(self, *, turn: bool) -> None:
        daemon, config = self.daemon, self.daemon.config
        if daemon.draining:
            raise overloaded("claif-codd is shutting down and takes no new work")
        if turn and daemon.turn_requests >= config.max_turns_in_flight:
            log.info("http.overloaded", limit="max_turns_in_flight", value=config.max_turns_in_flight)
            raise overloaded(f"claif-codd is running its maximum of {config.max_turns_in_flight} turns")


_request_id: ContextVar[str | None] = ContextVar("claif_codd_http_request", default=None)
"""The id of the request whose handler runs (see :func:`_named`)."""


def _method(request: web.Request) -> str:
    """The method a route's action is looked up by: a ``HEAD`` is its ``GET`` (aiohttp routes ``HEAD`` to
    each ``GET`` route and sends the answer's headers alone; the actions know no ``HEAD``: a 500 it was)."""
    return "GET" if request.method == "HEAD" else request.method


def _drop(request: web.Request, pending: int) -> bool:
    """Disconnect a client that would leave ``pending`` bytes of its stream unread (past the cap), if
    it is behind: its connection holds bytes it has not taken (else the writer has yet to run)."""
    transport = request.transport
    if transport is None or not transport.get_write_buffer_size():
        return False
    log.warning("http.slow_reader_dropped", request=_request_id.get(), pending_bytes=pending)
    transport.abort()  # frees what waited for it now
    return True


def _log_warning(message: str) -> None:
    """OpenAI's HTTP API has no place for a warning: the daemon's log gets it, with the request's id."""
    log.warning("http.request_warning", request=_request_id.get(), warning=message)


def _named(response: web.StreamResponse, request_id: str) -> web.StreamResponse:
    """Every answer names its request, as OpenAI's do (``x-request-id``, the SDKs' ``request_id``),
    and so does the daemon's log line for it: a stream's as its handler starts it, the others here."""
    if not response.prepared:
        response.headers["x-request-id"] = request_id
    return response


async def _with_request_id(_request: web.Request, response: web.StreamResponse) -> None:
    request_id = _request_id.get()
    if request_id is not None:
        response.headers["x-request-id"] = request_id


def overloaded(message: str) -> APIFailure:
    """Retryable: answered 503 with ``Retry-After``."""
    return APIFailure("status", 503, ErrorDetail(message, "server_error", "overloaded"))


def _retry_after(failure: APIFailure) -> dict[str, str] | None:
    return {"Retry-After": "1"} if failure.detail.code == "overloaded" else None


MAX_PATH_IN_ERROR = 200
"""A client's path is echoed back, cut to this many characters."""


_HTTP_CODES = {
    404: "unknown_url",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_content_encoding",
    417: "expectation_failed",
}


def _http_code(status: int) -> str | None:
    return _HTTP_CODES.get(status)
