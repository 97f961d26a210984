"""A client's connection to claif-codd's socket (:mod:`claif_cod.transport.daemon_backend` sends
the openai transport's requests over it).

One connection per client, multiplexed by request id; a reader task routes responses to
their futures, streamed chunks to their request's queue, and approval requests to the
client's approval handler, whose answer goes back as ``approval.respond``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from claif_cod._forked import call_after_fork, let_go_after_fork, transport_name
from claif_cod._log import get_logger
from claif_cod._version import __version__
from claif_cod.engine.approvals import ApprovalHandler, ApprovalRequest, Decision, FileChange, checked_decision
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.waiting import within
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail
from claif_cod.openai_compat.options import python_warning
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    ApprovalRequestedNotification,
    ApprovalRequestedParams,
    ApprovalRespondParams,
    ApprovalRespondRequest,
    CancelNotification,
    CancelParams,
    ChatCompletionsChunkNotification,
    ErrorCode,
    ErrorObject,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    HelloResult,
    Notification,
    ProtocolError,
    Request,
    RequestId,
    Response,
    ResponsesEventNotification,
    WarningNotification,
    decode_as_client,
    decode_result,
)
from claif_cod.transport.daemon_unusable import (
    DaemonHung,
    DaemonMismatch,
    DaemonUnavailable,
    UntrustedDaemon,
    connection_not_taken,
    other_protocol,
    outdated,
    refusal,
)
from claif_cod.transport.socket_path import UnsafeSocketDirectory, check_peer, check_socket
from claif_cod.transport.wire_errors import VERSION_MISMATCH, error_to_failure, request_frame

T = TypeVar("T")
log = get_logger("claif_cod.daemon_client")
CONNECT_TIMEOUT_S = 2.0
REOPEN_AFTER_S = 1.0
"""How long a client waits before opening another caller connection after one could not be opened
(a daemon at its ``--max-connections`` refuses it and asks for a second's wait): meanwhile its
callers' requests go through the engine loop's connection, instead of each paying a refused
connection and adding a warning to the daemon's log."""
ANSWER_GRACE_S = 5.0
"""How long past a request's ``timeout`` the daemon may stay silent about it: it times the request out
itself and says so at once, so longer means it is stopped (``kill -STOP``) or hung. The request then
fails as timed out, and the daemon is told to stop it (should it ever run again)."""


def handshake_unanswered(path: Path) -> DaemonHung:
    return DaemonHung(path, f"did not answer the handshake within {CONNECT_TIMEOUT_S * 2:g} s")


def approval_request(params: ApprovalRequestedParams) -> ApprovalRequest | None:
    """What a client's approval handler is asked; None for a kind it is not asked about (declined)."""
    if params.kind not in ("command", "file_change"):
        return None
    return ApprovalRequest(
        kind=params.kind,
        thread_id=params.thread_id,
        turn_id=params.turn_id,
        item_id=params.item_id if params.item_id is not None else params.approval_id,
        command=params.command,
        cwd=params.cwd,
        reason=params.reason,
        changes=tuple(FileChange(c.path, c.kind, c.diff, c.move_path) for c in params.changes),
        grant_root=params.grant_root,
    )


Chunks = Inbox[msgspec.Raw | APIFailure | None]
"""A streamed request's items as they arrive, then ``None`` once its reply (or failure) is in; an
``APIFailure`` in a forked child (:meth:`DaemonConnection._forked`)."""


@dataclass
class _Pending:
    future: asyncio.Future[msgspec.Raw]
    chunks: Chunks | None = None
    approvals: ApprovalHandler | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def resolve(self, result: msgspec.Raw) -> None:
        if not self.future.done():
            self.future.set_result(result)
        self._end()

    def fail(self, failure: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(failure)
        self._end()

    def _end(self) -> None:
        if self.chunks is not None:
            self.chunks.put_nowait(None)
        for task in self.tasks:  # its turn is over: handlers still asking are let go (a prompt closes)
            task.cancel()


class DaemonConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[RequestId, _Pending] = {}
        self._decoder = FrameDecoder()
        self._broken: BaseException | None = None
        self._read_task = asyncio.create_task(self._read_loop())
        self.hello: HelloResult | None = None
        self.path: Path | None = None
        call_after_fork(self, DaemonConnection._forked)

    @classmethod
    async def open(cls, path: Path, client_name: str = "claif_cod") -> DaemonConnection:
        """Connect and say hello; API keys and prompts go only to a daemon of our own uid."""
        try:
            check_socket(path)
        except UnsafeSocketDirectory as exc:
            raise UntrustedDaemon(f"refusing to connect to claif-codd at {path}: {exc}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.connect(str(path))  # a Unix socket connects at once, or not (asyncio's would wait on EAGAIN)
            reader, writer = await asyncio.open_unix_connection(sock=sock)
        except BlockingIOError:
            sock.close()
            raise connection_not_taken(path) from None
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable(f"no claif-codd answers at {path}: {exc}") from None
        except BaseException:
            sock.close()
            raise
        try:
            check_peer(writer.get_extra_info("socket"), path)
        except UnsafeSocketDirectory as exc:
            writer.close()
            raise UntrustedDaemon(f"refusing to talk to claif-codd at {path}: {exc}") from None
        conn = cls(reader, writer)
        conn.path = path
        let_go_after_fork(conn, [transport_name(writer.transport)])
        try:
            raw = await asyncio.wait_for(
                conn.call(hello_request(conn.next_id(), client_name)),
                CONNECT_TIMEOUT_S * 2,
            )
        except asyncio.TimeoutError:
            await conn.close()
            raise handshake_unanswered(path) from None
        except (APIFailure, DaemonUnavailable) as exc:
            await conn.close()
            if isinstance(exc, APIFailure) and exc.detail.code == VERSION_MISMATCH:
                raise DaemonMismatch(path, str(exc)) from None
            raise DaemonUnavailable(f"claif-codd at {path} refused the handshake: {exc}") from None
        except BaseException:  # cancelled (a caller's deadline, ``task.cancel()``): the connection is nobody's
            conn.close_now()  # its reader, left running, would hold the socket open until the loop ends
            raise
        try:
            conn.hello = decode_result(raw, HelloResult)
        except ProtocolError as exc:
            await conn.close()
            raise DaemonUnavailable(f"claif-codd at {path} answered the handshake wrongly: {exc}") from None
        other = other_protocol(conn.hello)
        if other is not None:
            await conn.close()
            raise DaemonMismatch(path, other)
        if conn.hello.package_version != __version__:
            log.warning("daemon.version_skew", daemon=conn.hello.package_version, client=__version__)
        return conn

    @property
    def alive(self) -> bool:
        return self._broken is None

    def next_id(self) -> int:
        return next(self._ids)

    async def call(
        self,
        request: Request,
        *,
        chunks: Chunks | None = None,
        approvals: ApprovalHandler | None = None,
        timeout: float | None = None,
    ) -> msgspec.Raw:
        """Send ``request`` and wait for its result (``APIFailure`` on an error reply); cancelled,
        the daemon is told to stop it. ``timeout``: the request's own (see :data:`ANSWER_GRACE_S`)."""
        future = self.start(request, chunks=chunks, approvals=approvals)
        assert isinstance(request.id, int)
        try:
            return await self._heard(asyncio.shield(future), request.id, timeout)
        except asyncio.CancelledError:
            self.abandon(request.id)
            raise

    async def first_chunk(
        self, request_id: int, chunks: Chunks, future: asyncio.Future[msgspec.Raw], timeout: float | None = None
    ) -> msgspec.Raw | None:
        """A streamed request's first chunk (None: it ended without one); cancelled, the daemon is told."""
        try:
            return await self.next_chunk(request_id, chunks, future, timeout)
        except asyncio.CancelledError:
            self.abandon(request_id)
            raise

    async def next_chunk(
        self, request_id: int, chunks: Chunks, future: asyncio.Future[msgspec.Raw], timeout: float | None = None
    ) -> msgspec.Raw | None:
        """A streamed request's next chunk, or None once it finished (raising its failure, if any).
        ``timeout``: the request's own, the longest wait for a chunk (see :data:`ANSWER_GRACE_S`)."""
        return await self._heard(_next_chunk(chunks, future), request_id, timeout)

    async def _heard(self, answer: Awaitable[T], request_id: int, timeout: float | None) -> T:
        """``answer``, unless the daemon says nothing of the request for ``timeout`` and the grace."""
        if timeout is None:
            return await answer
        try:
            return await within(answer, timeout + ANSWER_GRACE_S)
        except asyncio.TimeoutError:
            self.abandon(request_id)
            raise unanswered(timeout) from None

    def start(
        self,
        request: Request,
        *,
        chunks: Chunks | None = None,
        approvals: ApprovalHandler | None = None,
    ) -> asyncio.Future[msgspec.Raw]:
        if self._broken is not None:
            raise DaemonUnavailable(f"connection to claif-codd lost: {self._broken}")
        assert isinstance(request.id, int)
        refused = refusal(self.path, self.hello, request)
        if refused is not None:  # an older daemon: unknown to it, or taken without what it lacks
            raise refused
        frame = request_frame(request)  # a request too large fails here, with nothing left pending
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        # Whoever waits for it gets its failure; a request nobody waits for any more (abandoned, or
        # its stream dropped as the connection closes) fails unseen, not as "never retrieved".
        future.add_done_callback(_consume)
        self._pending[request.id] = _Pending(future, chunks, approvals)
        self._writer.write(frame)
        return future

    def abandon(self, request_id: int) -> None:
        """Nobody awaits this request any more: the daemon stops it (a turn is interrupted there), and
        its answer ("cancelled", most likely) is expected, not news."""
        if self._broken is None and request_id in self._pending:
            self._send(CancelNotification(params=CancelParams(id=request_id)))

    def _send(self, message: Request | Notification) -> None:
        self._writer.write(request_frame(message))

    async def _read_loop(self) -> None:
        try:
            while data := await self._reader.read(256 * 1024):
                for body in self._decoder.feed(data):
                    message = decode_as_client(body)
                    if message is not None:
                        self._dispatch(message)
            self._broken = ConnectionResetError("claif-codd closed the connection")
        except (OSError, ProtocolError) as exc:
            self._broken = exc
        except asyncio.CancelledError:  # closed, or the loop is ending (``asyncio.run``): so is the socket
            self._broken = ClientClosed()
            self._writer.close()
            raise
        finally:
            failure = connection_lost(self._broken)
            for pending in self._pending.values():
                pending.fail(failure)
            self._pending.clear()

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, Response):
            pending = self._pending.pop(message.id, None) if message.id is not None else None
            if pending is not None:
                pending.resolve(message.result)
        elif isinstance(message, ErrorResponse):
            pending = self._pending.pop(message.id, None) if message.id is not None else None
            if pending is not None:
                pending.fail(self._failure(message.error))
            elif message.id is None:
                log.warning("daemon.error", code=message.error.code, error=message.error.message)
        elif isinstance(message, ChatCompletionsChunkNotification):
            pending = self._pending.get(message.params.request_id)
            if pending is not None and pending.chunks is not None:
                pending.chunks.put_nowait(message.params.chunk)
        elif isinstance(message, ResponsesEventNotification):
            pending = self._pending.get(message.params.request_id)
            if pending is not None and pending.chunks is not None:
                pending.chunks.put_nowait(message.params.event)
        elif isinstance(message, WarningNotification):
            python_warning(message.params.message)
        elif isinstance(message, ApprovalRequestedNotification):
            pending = self._pending.get(message.params.request_id)
            task = asyncio.create_task(self._approve(message, pending.approvals if pending else None))
            if pending is not None:
                pending.tasks.add(task)
                task.add_done_callback(pending.tasks.discard)

    def _failure(self, error: ErrorObject) -> APIFailure:
        """What a request fails with when the daemon answers ``error``: an unknown method means a
        daemon older than this client (one that names its capabilities without the method's, or a
        method no capability covers), which is to be restarted."""
        if error.code == ErrorCode.METHOD_NOT_FOUND and self.hello is not None:
            return outdated(self.path, self.hello, f"a method this client sends ({error.message})")
        return error_to_failure(error)

    async def _approve(self, message: ApprovalRequestedNotification, handler: ApprovalHandler | None) -> None:
        params = message.params
        decision: Decision = "decline"
        request = approval_request(params)
        if handler is not None and request is not None:
            try:
                decision = checked_decision(await handler(request))
            except Exception:
                log.exception("daemon_client.approval_handler_failed")  # as in-process: logged, declined
        with contextlib.suppress(Exception):
            await self.call(
                ApprovalRespondRequest(
                    id=self.next_id(), params=ApprovalRespondParams(approval_id=params.approval_id, decision=decision)
                )
            )

    def _forked(self) -> None:
        """In a forked child: this connection and its requests in flight are the parent's (the child's
        copy of the socket is let go of), and its reader is not running here; a stream read on in
        the child fails at once instead of waiting for it."""
        self._broken = ConnectionAbortedError("the process forked")
        failure = APIFailure.opened_before_fork()
        for pending in self._pending.values():  # kept, as their futures are: what waits on them is the parent's
            if pending.chunks is not None:
                pending.chunks.put_after_fork(failure)

    def close_now(self) -> None:
        """On its loop, without waiting: the connection is closed (the reader's cancellation closes it)."""
        self._read_task.cancel()

    async def close(self) -> None:
        self._read_task.cancel()
        with contextlib.suppress(BaseException):
            await self._read_task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


def hello_request(request_id: int, client_name: str) -> HelloRequest:
    """The handshake every connection to the daemon starts with."""
    params = HelloParams(protocol_version=PROTOCOL_VERSION, package_version=__version__, client_name=client_name)
    return HelloRequest(id=request_id, params=params)


class ClientClosed(ConnectionAbortedError):
    """The connection's client closed it (``close()``, or its event loop ending), not claif-codd."""

    def __str__(self) -> str:
        return "the client was closed while the request ran"


def connection_lost(reason: object) -> APIFailure:
    """What a request in flight on a connection that failed with ``reason`` fails with."""
    said = (
        f"Connection error: {reason}."
        if isinstance(reason, ClientClosed)
        else f"connection to claif-codd lost: {reason}"
    )
    return APIFailure("connection", 0, ErrorDetail(said, "connection_error"))


def _consume(future: asyncio.Future[msgspec.Raw]) -> None:
    if not future.cancelled():
        future.exception()


def unanswered(timeout: float) -> APIFailure:
    """What a request fails with when the daemon said nothing of it for its timeout and the grace."""
    said = (
        f"Request timed out: claif-codd said nothing of it for its timeout of {timeout:g} s and"
        f" {ANSWER_GRACE_S:g} s more (stopped with kill -STOP, or hung?)."
    )
    return APIFailure("timeout", 408, ErrorDetail(said, "timeout"))


async def _next_chunk(chunks: Chunks, future: asyncio.Future[msgspec.Raw]) -> msgspec.Raw | None:
    chunk = await chunks.get()
    if chunk is None:
        future.result()
    elif isinstance(chunk, APIFailure):
        raise chunk
    return chunk
