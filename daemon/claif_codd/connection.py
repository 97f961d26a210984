"""One client connection: framing, the hello gate, request tasks, cancellation, back-pressure.

Every request runs in its own task so a slow turn never blocks the connection; outgoing
frames go through a bounded queue drained by one writer task, so a client that stops
reading is dropped instead of stalling the turns that feed it (or anyone else).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import typing
import uuid
from typing import TYPE_CHECKING, Any

from claif_cod._log import get_logger
from claif_cod.engine.engine import ApprovalHandler, ApprovalRequest, Decision
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.protocol import (
    HELLO_TIMEOUT_S,
    ApprovalRequestedNotification,
    ApprovalRequestedParams,
    CancelNotification,
    DuplicateId,
    ErrorResponse,
    FrameDecoder,
    FramingError,
    HelloRequest,
    HelloRequired,
    HelloTimeout,
    InternalError,
    Notification,
    Overloaded,
    ProtocolError,
    Request,
    RequestCancelled,
    RequestId,
    Response,
    decode,
    encode,
    encode_frame,
)
from claif_cod.transport.wire_errors import failure_to_error

if TYPE_CHECKING:
    from claif_codd.server import Daemon

log = get_logger("claif_codd.connection")

_ids = itertools.count(1)
_REQUEST_TYPES = typing.get_args(Request)


class Connection:
    def __init__(self, daemon: Daemon, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.daemon = daemon
        self.id = next(_ids)
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(daemon.config.max_frame_size)
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued_bytes = 0
        self.tasks: dict[RequestId, asyncio.Task[None]] = {}
        self.approvals: dict[str, asyncio.Future[Decision]] = {}
        self.client_name: str | None = None
        self.closed = False
        self.log = log.bind(conn=self.id)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        writer_task = asyncio.create_task(self._write_loop())
        try:
            await self._read_loop()
        finally:
            self.closed = True
            for task in list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            for future in self.approvals.values():
                if not future.done():
                    future.set_result("decline")
            self._outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer_task, 2.0)
            writer_task.cancel()
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self.log.debug("connection.closed")

    async def _read_loop(self) -> None:
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
                for body in exc.frames:
                    self._handle(body)
                self.log.info("connection.framing_error", error=exc.message)
                self._send_error(None, exc)
                return
            for body in frames:
                self._handle(body)
            if self.closed:
                return

    def close(self) -> None:
        """Stop reading; pending work is cancelled by :meth:`run`."""
        if not self.closed:
            self.closed = True
            self._reader.feed_eof()

    # --- inbound ---------------------------------------------------------------------------

    def _handle(self, body: bytes) -> None:
        try:
            message = decode(body)
        except ProtocolError as exc:
            if not exc.notification:
                self._send_error(exc.request_id, exc)
            return
        if isinstance(message, CancelNotification):
            task = self.tasks.get(message.params.id)
            if task is not None:
                task.cancel()
            return
        if not isinstance(message, _REQUEST_TYPES):
            return  # responses and daemon-side notifications mean nothing coming from a client
        request = message
        if self.client_name is None and not isinstance(request, HelloRequest):
            self._send_error(request.id, HelloRequired("send hello first"))
            return
        if request.id in self.tasks:
            self._send_error(request.id, DuplicateId(f"request id {request.id!r} is already in flight"))
            return
        if len(self.tasks) >= self.daemon.config.max_inflight_per_connection:
            limit = self.daemon.config.max_inflight_per_connection
            self._send_error(request.id, Overloaded.retry_after(0.5, f"more than {limit} requests in flight"))
            return
        self.tasks[request.id] = asyncio.create_task(self._serve(request))

    async def _serve(self, request: Request) -> None:
        request_log = self.log.bind(request=request.id, method=request.__struct_config__.tag)
        try:
            result = await self.daemon.methods.call(self, request)
            self.send(Response(id=request.id, result=result))
        except ProtocolError as exc:
            self._send_error(request.id, exc)
        except APIFailure as failure:
            request_log.info("request.failed", status=failure.status)
            self.send(ErrorResponse(id=request.id, error=failure_to_error(failure)))
        except asyncio.CancelledError:
            self._send_error(request.id, RequestCancelled("request cancelled"))
        except Exception as exc:
            request_log.exception("request.crashed")
            self._send_error(request.id, InternalError(f"{type(exc).__name__}: {exc}"))
        finally:
            self.tasks.pop(request.id, None)

    # --- outbound --------------------------------------------------------------------------

    def send(self, message: Request | Notification | Response[Any] | ErrorResponse) -> None:
        if self.closed and self._outbox.qsize() == 0 and not isinstance(message, (Response, ErrorResponse)):
            return
        frame = encode_frame(encode(message), self.daemon.config.max_frame_size)
        if self._queued_bytes + len(frame) > self.daemon.config.max_outbound_bytes:
            self.log.warning("connection.slow_reader_dropped", queued=self._queued_bytes)
            self._queued_bytes = 0
            self.close()
            self._writer.transport.abort()
            return
        self._queued_bytes += len(frame)
        self._outbox.put_nowait(frame)

    def _send_error(self, request_id: RequestId | None, exc: ProtocolError) -> None:
        self.send(ErrorResponse(id=request_id, error=exc.to_error()))

    async def _write_loop(self) -> None:
        while (frame := await self._outbox.get()) is not None:
            self._queued_bytes -= len(frame)
            try:
                self._writer.write(frame)
                await self._writer.drain()
            except (ConnectionError, RuntimeError):
                self.close()
                return

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
