"""One client connection: framing, the hello gate, request tasks, cancellation, back-pressure.

Every request runs in its own task so a slow turn never blocks the connection; outgoing
frames are handed to the transport at once (no writer task between a chunk and the socket),
and a client that stops reading is dropped instead of stalling the turns that feed it (or
anyone else).

Load limits answered here, each with a retryable OVERLOADED error sent at once (never a wait):

* more than ``max_inflight_per_connection`` requests in flight on this connection (twice that for
  the :data:`CONTROL_REQUESTS` that answer an approval, interrupt a turn or ask the status);
* more than ``max_turns_in_flight`` turn-starting requests (:data:`TURN_REQUESTS`, and the HTTP
  endpoint's turns) in flight in the whole daemon;
* work-starting requests while the daemon drains for shutdown.

``max_outbound_bytes`` caps what may wait to be written to this client (the transport's
buffer); a client that lets more pile up is logged and disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine.approvals import ApprovalHandler, ApprovalRequest, Decision
from claif_cod.engine.control import TurnControl
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.protocol import (
    HELLO_TIMEOUT_S,
    ApprovalRequestedNotification,
    ApprovalRequestedParams,
    ApprovalRespondRequest,
    CancelNotification,
    ChatCompletionsCreateRequest,
    DaemonShutdownRequest,
    DaemonStatusRequest,
    DuplicateId,
    ErrorResponse,
    FrameDecoder,
    FrameTooLarge,
    FramingError,
    HelloRequest,
    HelloRequired,
    HelloTimeout,
    InternalError,
    InvalidRequest,
    MethodNotFound,
    ModelsListRequest,
    Notification,
    Overloaded,
    ProtocolError,
    Request,
    RequestCancelled,
    RequestId,
    Response,
    ResponsesCompactRequest,
    ResponsesCreateRequest,
    SessionSendRequest,
    SessionsListRequest,
    TurnInterruptRequest,
    decode,
    encode,
    encode_frame,
)
from claif_cod.transport.wire_errors import failure_to_error
from claif_codd.turn_items import protocol_changes

if TYPE_CHECKING:
    from claif_codd.host import DaemonHost

log = get_logger("claif_codd.connection")

_ids = itertools.count(1)
REQUEST_TYPES = typing.get_args(Request)
TURN_REQUESTS = (ChatCompletionsCreateRequest, ResponsesCreateRequest, ResponsesCompactRequest, SessionSendRequest)
"""Requests that run a Codex turn: counted against the daemon's ``max_turns_in_flight``."""
WORK_REQUESTS = (*TURN_REQUESTS, ModelsListRequest)
"""Requests that need Codex: refused while the daemon drains for shutdown."""
CONTROL_REQUESTS = (ApprovalRespondRequest, TurnInterruptRequest, DaemonStatusRequest)
"""Requests about work already in flight: a connection whose requests fill its cap, turns waiting
for its approvals, must still answer them or stop its turns, so these may take the cap once more."""
CONTROL_ONLY = (DaemonStatusRequest, DaemonShutdownRequest, SessionsListRequest)
"""What a connection let in beyond the daemon's limits (its own commands', see refusal.py) may ask."""
CONTROL_ONLY_RETRY_AFTER_S = 1.0
INFLIGHT_RETRY_AFTER_S = 0.5
TURNS_RETRY_AFTER_S = 1.0
FLUSH_TIMEOUT_S = 2.0
"""How long a closing connection may take to write what is buffered for its client."""
REPLY_ROOM = 1024
"""Bytes a request's id must leave free in a frame, so that an error reply can always echo it."""


def error_frame(request_id: RequestId | None, error: ProtocolError, max_frame: int) -> tuple[bytes, bool]:
    """The framed error reply for ``request_id``, and whether it carries that id.

    An id too large to be echoed within a frame gets the error with ``id`` null instead (the caller
    should then close the connection: the client cannot tell which request failed).
    """
    try:
        return encode_frame(encode(ErrorResponse(id=request_id, error=error.to_error())), max_frame), True
    except FrameTooLarge:
        unechoable = InvalidRequest(f"a request id too large to echo within the {max_frame}-byte frame limit")
        return encode_frame(encode(ErrorResponse(id=None, error=unechoable.to_error())), max_frame), False


@dataclass
class Admitted:
    """A peer let in beyond the daemon's limits (see refusal.py): what it has sent, its ``hello`` first."""

    decoder: FrameDecoder
    """Holding the start of a frame not yet whole."""
    frames: list[bytes] = field(default_factory=list)


class Connection:
    def __init__(
        self,
        daemon: DaemonHost[Connection],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        admitted: Admitted | None = None,
    ) -> None:
        self.daemon = daemon
        self.id = next(_ids)
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(daemon.config.max_frame_size) if admitted is None else admitted.decoder
        self._first = [] if admitted is None else admitted.frames
        self.control_only = admitted is not None
        """Let in beyond the daemon's limits for its own commands: takes only :data:`CONTROL_ONLY`."""
        self._dropped = False
        self._cancel_errors: dict[RequestId, ProtocolError] = {}
        self.tasks: dict[RequestId, asyncio.Task[None]] = {}
        self.turn_controls: dict[RequestId, TurnControl] = {}
        """The turns of each turn-running request in flight, for ``turn.interrupt`` by ``request_id``."""
        self.approvals: dict[str, asyncio.Future[Decision]] = {}
        self.client_name: str | None = None
        self.sessions: set[str] = set()
        """Named sessions this connection has sent turns to (it follows them)."""
        self._session_of: dict[RequestId, str] = {}
        self.closed = False
        self.log = log.bind(conn=self.id)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._read_loop()
        finally:
            self.closed = True
            followed = self._sessions_others_follow()
            leaving = self.daemon.unfollowed()  # turns kept for followers, this connection the last of them
            for request_id, task in list(self.tasks.items()):
                session = self._session_of.get(request_id)
                if session is not None and session in followed:
                    self.daemon.adopt(task, session)  # the turn belongs to a session others follow: let it finish
                else:
                    task.cancel()  # which interrupts its turn
                    leaving.append(task)
            await asyncio.gather(*leaving, return_exceptions=True)
            for future in self.approvals.values():
                if not future.done():
                    future.set_result("decline")
            self._writer.close()  # what is buffered is still written; a client that never reads is cut off
            try:
                await asyncio.wait_for(self._writer.wait_closed(), FLUSH_TIMEOUT_S)
            except Exception:
                self._writer.transport.abort()
            self.log.debug("connection.closed")

    async def _read_loop(self) -> None:
        self._handle_all(self._first)  # what a peer let in beyond the limits sent (see refusal.py)
        self._first = []
        loop = asyncio.get_running_loop()
        hello_deadline = loop.time() + HELLO_TIMEOUT_S
        while True:
            timeout = None if self.client_name is not None else max(0.0, hello_deadline - loop.time())
            try:
                data = await asyncio.wait_for(self._reader.read(256 * 1024), timeout)
            except asyncio.TimeoutError:
                self._send_error(None, HelloTimeout(f"no hello within {HELLO_TIMEOUT_S:g} s"))
                return
            except ConnectionError:
                return
            if not data:
                return
            try:
                frames = self._decoder.feed(data)
            except FramingError as exc:
                self._handle_all(exc.frames)
                self.log.info("connection.framing_error", error=exc.message)
                self._send_error(None, exc)
                return
            self._handle_all(frames)
            if self.closed:
                return

    def _handle_all(self, frames: Sequence[bytes]) -> None:
        """Each frame of one read, until one closes the connection: those after it do not run."""
        for body in frames:
            if self.closed:
                return
            self._handle(body)

    def close(self) -> None:
        """Stop reading; pending work is cancelled by :meth:`run`."""
        if not self.closed:
            self.closed = True
            self._reader.feed_eof()

    def _sessions_others_follow(self) -> set[str]:
        others = [conn for conn in self.daemon.connections if conn is not self and not conn.closed]
        return {session for session in self.sessions if any(session in conn.sessions for conn in others)}

    def cancel_requests(self, error: ProtocolError) -> list[asyncio.Task[None]]:
        """Cancel every request in flight, answering each with ``error`` instead of REQUEST_CANCELLED."""
        tasks = list(self.tasks.items())
        for request_id, task in tasks:
            self._cancel_errors[request_id] = error
            task.cancel()
        return [task for _, task in tasks]

    # --- inbound ---------------------------------------------------------------------------

    def _handle(self, body: bytes) -> None:
        try:
            message = decode(body)
        except ProtocolError as exc:
            if isinstance(exc, MethodNotFound) and self.client_name is None:  # as any other request before hello
                exc = HelloRequired("send hello first", request_id=exc.request_id, notification=exc.notification)
            if not exc.notification:
                self._send_error(exc.request_id, exc)
            return
        if isinstance(message, CancelNotification):
            task = self.tasks.get(message.params.id)
            if task is not None:
                task.cancel()
            return
        if not isinstance(message, REQUEST_TYPES):
            return  # responses and daemon-side notifications mean nothing coming from a client
        request = message
        if len(msgspec.json.encode(request.id)) + REPLY_ROOM > self.daemon.config.max_frame_size:
            self._send_error(None, InvalidRequest("request id too large: no reply could echo it; closing"))
            self.close()
            return
        if self.client_name is None and not isinstance(request, HelloRequest):
            self._send_error(request.id, HelloRequired("send hello first"))
            return
        if request.id in self.tasks:
            self._send_error(request.id, DuplicateId(f"request id {request.id!r} is already in flight"))
            return
        if isinstance(request, HelloRequest):
            self._hello(request)
            return
        refusal = self._refusal(request)
        if refusal is not None:
            self._send_error(request.id, refusal)
            return
        turn = isinstance(request, TURN_REQUESTS)
        if turn:
            self.daemon.turn_requests += 1
            session = session_of(request)
            if session is not None:
                self.sessions.add(session)
                self._session_of[request.id] = session
        task = asyncio.create_task(self._serve(request))
        self.tasks[request.id] = task
        task.add_done_callback(functools.partial(self._request_done, request.id, turn))

    def _hello(self, request: HelloRequest) -> None:
        """Answered inline, not in a task: a request pipelined right behind it sees the handshake done."""
        try:
            result = self.daemon.methods.hello(self, request)
        except ProtocolError as exc:
            self._send_error(request.id, exc)
            return
        self.send(Response(id=request.id, result=result))

    def _refusal(self, request: Request) -> Overloaded | None:
        """Why the daemon can't take ``request`` right now, or None; checked before any work starts."""
        daemon, config = self.daemon, self.daemon.config
        if self.control_only and not isinstance(request, CONTROL_ONLY):
            return Overloaded.retry_after(
                CONTROL_ONLY_RETRY_AFTER_S,
                "this connection was let in beyond claif-codd's limits for its own commands (status, stop, "
                "sessions), and takes no other request",
            )
        if daemon.draining and isinstance(request, WORK_REQUESTS):
            return daemon.shutdown_error("claif-codd is shutting down and takes no new work")
        limit = config.max_inflight_per_connection
        if len(self.tasks) >= limit * (2 if isinstance(request, CONTROL_REQUESTS) else 1):
            self.log.info("connection.overloaded", limit="max_inflight_per_connection", value=limit)
            return Overloaded.retry_after(
                INFLIGHT_RETRY_AFTER_S, f"{limit} requests are already in flight on this connection"
            )
        if isinstance(request, TURN_REQUESTS) and daemon.turn_requests >= config.max_turns_in_flight:
            limit = config.max_turns_in_flight
            self.log.info("connection.overloaded", limit="max_turns_in_flight", value=limit)
            return Overloaded.retry_after(TURNS_RETRY_AFTER_S, f"claif-codd is running its maximum of {limit} turns")
        return None

    async def _serve(self, request: Request) -> None:
        try:
            result = await self.daemon.methods.call(self, request)
            self.send(Response(id=request.id, result=result))
        except ProtocolError as exc:
            self._send_error(request.id, exc)
        except APIFailure as failure:
            self._request_log(request).info("request.failed", status=failure.status)
            self.send(ErrorResponse(id=request.id, error=failure_to_error(failure)))
        except asyncio.CancelledError:
            reason = self._cancel_errors.get(request.id)
            self._send_error(request.id, reason or RequestCancelled("request cancelled"))
        except Exception as exc:
            self._request_log(request).exception("request.crashed")
            self._send_error(request.id, InternalError(f"{type(exc).__name__}: {exc}"))
        finally:
            self.tasks.pop(request.id, None)

    def _request_log(self, request: Request) -> Any:
        """Bound only when a request has something to log: binding costs more than the rest of a
        request's own bookkeeping."""
        return self.log.bind(request=request.id, method=request.__struct_config__.tag)

    def _request_done(self, request_id: RequestId, turn: bool, task: asyncio.Task[None]) -> None:
        """Bookkeeping that must happen even for a task cancelled before it ever ran."""
        if self.tasks.get(request_id) is task:
            del self.tasks[request_id]
        self._session_of.pop(request_id, None)
        reason = self._cancel_errors.pop(request_id, None)
        if task.cancelled():  # cancelled before its first step: _serve never ran, so answer here
            self._send_error(request_id, reason or RequestCancelled("request cancelled"))
        if turn:
            self.daemon.turn_requests -= 1

    # --- outbound --------------------------------------------------------------------------

    def send(self, message: Request | Notification | Response[Any] | ErrorResponse) -> None:
        """Queue ``message`` for the writer; never waits, so no turn is ever held up by this client."""
        if self._dropped or (self.closed and not isinstance(message, (Response, ErrorResponse))):
            return
        frame = self._frame(message)
        transport = self._writer.transport
        if transport.is_closing():
            return
        pending = transport.get_write_buffer_size()
        # A frame larger than the cap still goes out when nothing else waits: the cap is on backlog.
        if pending and pending + len(frame) > self.daemon.config.max_outbound_bytes:
            self._drop_slow_reader(pending)
            return
        self._writer.write(frame)

    def _frame(self, message: Request | Notification | Response[Any] | ErrorResponse) -> bytes:
        """``message`` framed; a reply too large for a frame becomes an error that fits (see error_frame)."""
        max_frame = self.daemon.config.max_frame_size
        try:
            return encode_frame(encode(message), max_frame)
        except FrameTooLarge as exc:
            if not isinstance(message, (Response, ErrorResponse)):
                tag = message.__struct_config__.tag
                raise InternalError(f"a {tag} message does not fit in a frame: {exc}") from None
            self.log.warning("connection.reply_too_large", request=_short(message.id))
            error = InternalError(f"the reply does not fit in the {max_frame}-byte frame limit")
            frame, echoed = error_frame(message.id, error, max_frame)
            if not echoed:
                self.close()
            return frame

    def _drop_slow_reader(self, pending: int) -> None:
        self.log.warning(
            "connection.slow_reader_dropped",
            pending_bytes=pending,
            max_outbound_bytes=self.daemon.config.max_outbound_bytes,
            requests=len(self.tasks),
        )
        self._dropped = True
        self._writer.transport.abort()  # frees the backlog now
        self.close()

    def _send_error(self, request_id: RequestId | None, exc: ProtocolError) -> None:
        self.send(ErrorResponse(id=request_id, error=exc.to_error()))

    # --- approvals -------------------------------------------------------------------------

    def approval_handler(self, request_id: RequestId) -> ApprovalHandler:
        """Asks this client about approvals for the turn started by ``request_id``."""

        async def ask(approval: ApprovalRequest) -> Decision:
            if self.closed:
                return "decline"
            approval_id = uuid.uuid4().hex
            future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
            self.approvals[approval_id] = future
            deadline = self.daemon.config.approval_timeout
            self.send(
                ApprovalRequestedNotification(
                    params=ApprovalRequestedParams(
                        approval_id=approval_id,
                        request_id=request_id,
                        kind=approval.kind,
                        thread_id=approval.thread_id,
                        turn_id=approval.turn_id,
                        deadline_s=deadline,
                        command=approval.command,
                        cwd=approval.cwd,
                        reason=approval.reason,
                        item_id=approval.item_id,
                        changes=protocol_changes(approval.changes),
                        grant_root=approval.grant_root,
                        available_decisions=["accept", "acceptForSession", "decline", "cancel"],
                    )
                )
            )
            try:
                return await asyncio.wait_for(future, deadline)
            except asyncio.TimeoutError:
                self.log.info("approval.timed_out", approval=approval_id)
                return "decline"
            finally:
                self.approvals.pop(approval_id, None)

        return ask


def _short(request_id: RequestId | None) -> RequestId | None:
    """A request id as it may appear in a log line (client-supplied: capped)."""
    return request_id[:100] if isinstance(request_id, str) else request_id


def session_of(request: Request) -> str | None:
    """The named session a turn-starting request continues, if any: a chat's body names it as the
    Python client's ``extra_body={"session_id": ...}`` does, and wins over its options."""
    if isinstance(request, SessionSendRequest):
        return request.params.session_id
    if isinstance(request, ChatCompletionsCreateRequest):
        body = request.params.body
        if _SESSION_KEY.search(body):  # rare: one scan (of the frame's bytes, not a copy), a decode only then
            with contextlib.suppress(msgspec.DecodeError):  # the request's own parse says what is wrong
                named = _body_session.decode(body).session_id
                if named is not None:
                    return named
        return request.params.options.session_id
    return None


class _BodySession(msgspec.Struct):
    session_id: str | None = None


_body_session = msgspec.json.Decoder(_BodySession)
_SESSION_KEY = re.compile(rb'"session_id"')
