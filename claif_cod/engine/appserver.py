"""An asyncio JSON-RPC client for one `codex app-server` child over stdio.

The child runs in its own process group so that closing it (stdin EOF, then SIGTERM, then
SIGKILL to the whole group) leaves nothing behind.  Notifications are routed to per-thread
queues; every request the server sends us gets an answer, because Codex waits forever
for one.

Dead, hung and broken children
------------------------------
* **Exit.** A watcher awaits the child's exit itself (not the EOF of its stdout, which a
  descendant may keep open), gives the pipe readers a moment to drain the last words,
  then fails every pending request and puts :class:`ProcessExit` on every thread queue.
* **Liveness.** Codex has no ping, so ``thread/loaded/list`` (cheap, answered even while
  turns run) serves as the probe.  Every request has a deadline (:attr:`Liveness.request_timeout`
  unless the caller gives one).  When a deadline passes, or when a turn has been silent for
  :attr:`Liveness.turn_silence`, the child is probed: an answer of any kind within
  :attr:`Liveness.probe_timeout`, or any other line from the child meanwhile, means it is
  alive (a slow request then fails alone with :class:`CodexRequestTimedOut`; a slow turn
  simply goes on waiting).  Silence means it is hung: it is *condemned*, i.e. everything
  waiting on it fails with :class:`CodexProcessHung` and the kill ladder runs in the
  background, so the pool replaces it on the next request.
* **Garbage.** Lines that are not JSON-RPC objects are logged and skipped.  A line beyond
  :data:`LINE_LIMIT` leaves the stream unframed, so that child is
  condemned as well.

The child as an OS process (spawn, exit, stderr, kill ladder) is :mod:`claif_cod.engine.child_process`;
where each of its lines goes is :mod:`claif_cod.engine.rpc_router`; this module is the conversation
with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgspec

from claif_cod._log import get_logger
from claif_cod._version import __version__
from claif_cod.engine import liveness as _liveness
from claif_cod.engine import overload, wire
from claif_cod.engine.child_process import ChildProcess
from claif_cod.engine.errors import (
    STOPPED_ON_PURPOSE,
    CodexProcessDied,
    CodexProcessHung,
    CodexRequestTimedOut,
    CodexRpcError,
    CodexStartFailed,
)
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.json_lines import LineSplitter, LineTooLong
from claif_cod.engine.liveness import PROBE_METHOD, Liveness
from claif_cod.engine.rpc_router import RpcRouter
from claif_cod.engine.server_requests import RpcErrorReply, ServerRequestHandler
from claif_cod.engine.thread_messages import ProcessExit, ThreadMessage
from claif_cod.engine.waiting import within
from claif_cod.engine.wire_notifications import UNUSED_NOTIFICATIONS

T = TypeVar("T")

INITIALIZE_TIMEOUT_S = 30.0
LINE_LIMIT = 256 * 1024 * 1024
"""Codex sends whole turns (with command output) on one line."""
EXIT_DRAIN_S = 0.25
"""After the child exits, how long its pipes may take to deliver their last lines.

Normally they reach EOF at once; a descendant holding them open must not delay the news."""

log = get_logger("claif_cod.appserver")


_encoder = msgspec.json.Encoder()


class AppServer:
    """One running ``codex app-server`` and the JSON-RPC state around it."""

    def __init__(
        self,
        child: ChildProcess,
        *,
        codex_path: str,
        cwd: str,
        handle_server_request: ServerRequestHandler,
        liveness: Liveness | None = None,
    ) -> None:
        self._child = child
        self._proc = child.proc
        self.codex_path = codex_path
        self.cwd = cwd
        self.version: str | None = None
        """The Codex version this process runs (its ``initialize`` answer's user agent, ``name/VERSION ...``)."""
        self.liveness = liveness or _liveness.DEFAULT_LIVENESS
        self.started_at = time.monotonic()
        self.last_heard = self.started_at
        """When the child last wrote a line to stdout (monotonic)."""
        self._handle_server_request = handle_server_request
        self._ids = itertools.count(1)
        self._router = RpcRouter(child.pid)
        self._pending = self._router.pending
        self._room = asyncio.Semaphore(overload.IN_FLIGHT)
        self._threads = self._router.threads
        self._server_requests: set[asyncio.Task[None]] = set()
        self._death: CodexProcessDied | None = None
        self._closing = False
        self._probe: asyncio.Task[bool] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._lines = LineSplitter(LINE_LIMIT)
        self._stdout_ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        child.read_stdout(self._stdout_received, self._stdout_closed)
        self._reader = asyncio.create_task(self._watch_stdout(), name=f"codex-stdout-{child.pid}")
        self._watcher = asyncio.create_task(self._watch_exit(), name=f"codex-watch-{child.pid}")

    @classmethod
    async def start(
        cls,
        codex_path: str,
        *,
        cwd: str,
        env: Mapping[str, str],
        handle_server_request: ServerRequestHandler,
        config_overrides: list[str] | None = None,
        liveness: Liveness | None = None,
    ) -> AppServer:
        child = await ChildProcess.spawn(codex_path, cwd=cwd, env=env, config_overrides=config_overrides)
        server = cls(
            child, codex_path=codex_path, cwd=cwd, handle_server_request=handle_server_request, liveness=liveness
        )
        try:
            params = wire.InitializeParams(
                client_info=wire.ClientInfo(name="claif_cod", version=__version__),
                capabilities=wire.InitializeCapabilities(opt_out_notification_methods=UNUSED_NOTIFICATIONS),
            )
            # No probe here: a child that cannot finish its handshake is not worth keeping either way.
            raw = await server._request_once("initialize", params, INITIALIZE_TIMEOUT_S)
            agent = msgspec.json.decode(raw, type=wire.InitializeResult).user_agent
            server.version = agent.partition("/")[2].partition(" ")[0] or None
            await server.notify("initialized")
        except BaseException as exc:
            if await server._close_through_cancellation(min(server.liveness.kill_grace, 0.5)):
                if not isinstance(exc, asyncio.CancelledError):
                    raise asyncio.CancelledError from exc
                raise
            if isinstance(exc, (CodexProcessDied, asyncio.TimeoutError, CodexRpcError, msgspec.DecodeError)):
                if isinstance(exc, asyncio.TimeoutError):
                    exc = asyncio.TimeoutError(f"no answer to initialize within {INITIALIZE_TIMEOUT_S:g} s")
                raise CodexStartFailed(
                    f"codex app-server did not complete its handshake: {exc}", stderr_tail=server.stderr_tail()
                ) from exc
            raise
        log.debug("appserver.started", pid=child.pid, cwd=cwd)
        return server

    # --- state ---------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._death is None and not self._closing and self._proc.returncode is None

    def stderr_tail(self) -> str:
        return self._child.stderr_tail()

    @property
    def death(self) -> CodexProcessDied | None:
        """Why this child can no longer be used (exit, hang, close), once that is known."""
        return self._death

    @property
    def requests_in_flight(self) -> int:
        """Requests sent and not yet answered: a process with any is working for someone."""
        return len(self._pending)

    # --- requests --------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: object,
        result_type: type[T],
        *,
        timeout: float | None = None,
        cancelled: Callable[[asyncio.Future[msgspec.Raw]], None] | None = None,
    ) -> T:
        raw = await self.request_raw(method, params, timeout=timeout, cancelled=cancelled)
        return msgspec.json.decode(raw, type=result_type)

    async def request_raw(
        self,
        method: str,
        params: object,
        *,
        timeout: float | None = None,
        cancelled: Callable[[asyncio.Future[msgspec.Raw]], None] | None = None,
    ) -> msgspec.Raw:
        """Send a request and await its answer within ``timeout`` (default :attr:`Liveness.request_timeout`).

        When the deadline passes the child is probed: if it is hung this raises
        :class:`CodexProcessHung` (and the child is being killed), else
        :class:`CodexRequestTimedOut`, which is also an :class:`asyncio.TimeoutError`.
        A caller cancelled once the request was written gets its answer's future in ``cancelled``:
        Codex acts on the request anyway (the future fails if the child dies, and has no deadline).
        At most :data:`~claif_cod.engine.overload.IN_FLIGHT` requests are in Codex at once (an
        interrupt and the probe aside), and one that Codex refuses for want of room is sent again.
        """
        limit = self.liveness.request_timeout if timeout is None else timeout
        waits = overload.backoff()
        async with self._room if method not in overload.UNQUEUED else contextlib.nullcontext():
            while True:
                try:
                    return await self._request_once(method, params, limit, cancelled)
                except CodexRpcError as exc:
                    if exc.code != overload.OVERLOADED or (wait := next(waits, None)) is None:
                        raise
                    log.debug("appserver.overloaded", pid=self.pid, method=method, retry_in=round(wait, 3))
                except asyncio.TimeoutError:
                    if await self.check_alive():
                        raise CodexRequestTimedOut(method, limit) from None
                    raise self._death or CodexProcessHung(self.pid, f"no answer to {method}") from None
                await asyncio.sleep(wait)

    async def _request_once(
        self,
        method: str,
        params: object,
        timeout: float | None,
        cancelled: Callable[[asyncio.Future[msgspec.Raw]], None] | None = None,
    ) -> msgspec.Raw:
        if self._death is not None:
            raise self._death
        request_id = next(self._ids)
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        kept = False
        try:
            await self._write(wire.OutgoingRequest(id=request_id, method=method, params=params))
            return await within(future if cancelled is None else asyncio.shield(future), timeout)
        except asyncio.CancelledError:
            if cancelled is not None and not future.cancelled():
                kept = True
                future.add_done_callback(lambda _: self._pending.pop(request_id, None))
                cancelled(future)
            raise
        finally:
            if not kept:
                self._pending.pop(request_id, None)
                if future.done() and not future.cancelled():
                    future.exception()  # a death set on it while the write failed is what the write raised

    # --- liveness ----------------------------------------------------------------------------

    async def check_alive(self) -> bool:
        """Probe the child (one probe at a time, shared by all askers); False when it is dead or hung.

        A hung child is condemned by the probe itself: see the module documentation.
        """
        if self._death is not None:
            return False
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._run_probe(), name=f"codex-probe-{self.pid}")
        return await asyncio.shield(self._probe)

    def check_alive_soon(self) -> None:
        """Start a probe in the background (a turn went quiet); its verdict acts by itself."""
        if self._death is None and (self._probe is None or self._probe.done()):
            self._probe = asyncio.create_task(self._run_probe(), name=f"codex-probe-{self.pid}")

    async def _run_probe(self) -> bool:
        sent = time.monotonic()
        timeout = self.liveness.probe_timeout
        try:
            await self._request_once(PROBE_METHOD, {}, timeout)
        except CodexRpcError:
            return True  # an error answer is an answer
        except CodexProcessDied:
            return False
        except asyncio.TimeoutError:
            if self.last_heard > sent:
                log.warning("appserver.probe_slow", pid=self.pid, timeout=timeout)
                return True  # it did not answer the probe but is still talking: busy, not hung
            self.condemn(CodexProcessHung(self.pid, f"no answer to a liveness probe within {timeout:g} s"))
            return False
        return True

    def condemn(self, error: CodexProcessDied) -> None:
        """Give up on a child that is alive but useless: fail everything waiting on it, then kill it."""
        if self._death is not None:
            return
        log.error("appserver.condemned", pid=self.pid, reason=str(error))
        self._die(error)
        self._start_close(self.liveness.kill_grace)

    async def notify(self, method: str, params: object = None) -> None:
        await self._write(wire.OutgoingNotification(method=method, params=params))

    async def _write(self, message: object) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            raise await self._death_report()
        stdin.write(_encoder.encode(message) + b"\n")
        try:
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise await self._death_report() from None

    async def _death_report(self) -> CodexProcessDied:
        """The child's exit as the watcher records it (with exit code and stderr), once it has."""
        if self._death is None and not self._closing:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._watcher), 2.0)
        return self._death or CodexProcessDied(self._proc.returncode, self.stderr_tail(), pid=self.pid)

    # --- thread event routing --------------------------------------------------------------

    def subscribe(self, thread_id: str) -> Inbox[ThreadMessage]:
        queue: Inbox[ThreadMessage] = Inbox()
        if self._death is not None:
            queue.put_nowait(ProcessExit(self._death))
        self._threads[thread_id] = queue
        return queue

    def unsubscribe(self, thread_id: str) -> None:
        self._threads.pop(thread_id, None)

    # --- reading ----------------------------------------------------------------------------

    def _stdout_received(self, data: bytes) -> None:
        """Called by the pipe as bytes arrive: each complete line is handled at once."""
        try:
            lines = self._lines.feed(data)
        except LineTooLong as exc:
            for line in exc.lines:
                self._dispatch(line)
            if self._death is None:
                log.error("appserver.line_too_long", pid=self.pid)
                self.condemn(CodexProcessDied(None, f"a line on stdout exceeded {LINE_LIMIT} bytes", pid=self.pid))
            return
        if lines:
            self.last_heard = time.monotonic()
            for line in lines:
                self._dispatch(line)

    def _stdout_closed(self) -> None:
        last = self._lines.end()
        if last:  # a last line without its newline (what readline gave at EOF)
            self._dispatch(last)
        if not self._stdout_ended.done():
            self._stdout_ended.set_result(None)

    async def _watch_stdout(self) -> None:
        await self._stdout_ended
        # EOF: the child exits, or closed its stdout and is no use to us any more.
        if await self._child.exited(1.0):
            return
        self.condemn(CodexProcessDied(None, "the app-server closed its stdout", pid=self.pid))

    async def _watch_exit(self) -> None:
        returncode = await self._child.exit
        # The last words (stderr, a final response) are often the reason; they come at once
        # unless a descendant still holds the pipes, which must not delay the news.
        await asyncio.wait([self._reader, self._child.stderr_reader], timeout=EXIT_DRAIN_S)
        self._die(CodexProcessDied(returncode, self.stderr_tail(), pid=self.pid))
        # Whatever the leader left behind in its group (commands it ran) has no one to report to.
        self._start_close(0.0)

    def _dispatch(self, line: bytes) -> None:
        request = self._router.dispatch(line)
        if request is not None:
            task = asyncio.create_task(self._answer(*request))
            self._server_requests.add(task)
            task.add_done_callback(self._server_requests.discard)

    async def _answer(self, request_id: wire.RequestId, method: str, params: msgspec.Raw) -> None:
        reply: object
        try:
            result = await self._handle_server_request(method, params)
            reply = wire.OutgoingResult(id=request_id, result=result)
        except RpcErrorReply as exc:
            reply = wire.OutgoingError(id=request_id, error=wire.RpcError(code=exc.code, message=exc.message))
        except Exception as exc:  # never leave Codex waiting
            log.exception("appserver.server_request_failed", method=method)
            reply = wire.OutgoingError(id=request_id, error=wire.RpcError(code=-32603, message=str(exc)))
        with contextlib.suppress(CodexProcessDied):
            await self._write(reply)

    def _die(self, error: CodexProcessDied) -> None:
        if self._death is not None:
            return
        self._death = error
        if not self._closing:
            log.warning("appserver.died", pid=self.pid, returncode=error.returncode)
        self._router.fail_all(error)

    # --- shutdown ---------------------------------------------------------------------------

    async def close(self, grace: float | None = None) -> None:
        """Kill ladder: close stdin, then SIGTERM, then SIGKILL, always to the whole group.

        Each rung waits ``grace`` (default :attr:`Liveness.kill_grace`).  Closing twice, or
        while a condemned child is being killed, waits for the same ladder.
        """
        self._start_close(self.liveness.kill_grace if grace is None else grace)
        assert self._close_task is not None
        await asyncio.shield(self._close_task)

    async def _close_through_cancellation(self, grace: float) -> bool:
        """:meth:`close`, waited for to the end even when the caller is cancelled again meanwhile;
        whether it was (the caller then raises its cancellation).

        For a child that did not finish its handshake: its start-up holds its Codex home's turn
        (``ProcessPool._start``), and Codex fails to start while another process of the home
        initialises its state ("failed to initialize sqlite state runtime"). A request cancelled
        during the handshake is cancelled twice (by its waiter, then by the undoing of its
        dispatch), and the second cancellation used to end the wait at once: the next request's
        start-up began beside a Codex still starting, and failed."""
        self._start_close(grace)
        closing = self._close_task
        assert closing is not None
        cancelled = False
        while not closing.done():
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                cancelled = True
        return cancelled

    def start_closing(self) -> None:
        """Take no more work from now on (``alive`` is False at once) and close in the background."""
        self._start_close(self.liveness.kill_grace)

    def _start_close(self, grace: float) -> None:
        self._closing = True
        if self._close_task is None:
            self._close_task = asyncio.create_task(self._kill_ladder(grace), name=f"codex-close-{self.pid}")

    async def _kill_ladder(self, grace: float) -> None:
        self._closing = True
        try:
            await self._child.kill(grace)
        finally:
            # A running probe is not cancelled: _die() below fails its request, and it reports that.
            tasks = [self._reader, self._watcher, *self._child.tasks, *self._server_requests]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._die(CodexProcessDied(self._proc.returncode, STOPPED_ON_PURPOSE, pid=self.pid))
