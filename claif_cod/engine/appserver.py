"""An asyncio JSON-RPC client for one `codex app-server` child over stdio.

The child runs in its own process group so that closing it (stdin EOF, then SIGTERM, then
SIGKILL to the whole group) leaves nothing behind.  Notifications are routed to per-thread
queues; every request the server sends us gets an answer, because Codex waits forever
for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import msgspec

from claif_cod._log import get_logger
from claif_cod._version import __version__
from claif_cod.engine import wire
from claif_cod.engine.errors import CodexProcessDied, CodexRpcError, CodexStartFailed

T = TypeVar("T")

LINE_LIMIT = 256 * 1024 * 1024
"""Codex sends whole turns (with command output) on one line."""

STDERR_TAIL = 8192
INITIALIZE_TIMEOUT_S = 30.0

log = get_logger("claif_cod.appserver")


class RpcErrorReply(Exception):
    """Raised by a server-request handler to answer Codex with a JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ServerRequestHandler = Callable[[str, msgspec.Raw], Awaitable[object]]
"""Answers one server → client request (approvals...); return the ``result`` or raise RpcErrorReply."""


class Notification:
    __slots__ = ("method", "params")

    def __init__(self, method: str, params: msgspec.Raw) -> None:
        self.method = method
        self.params = params


class ProcessExit:
    """Put on every thread queue when the child dies."""

    __slots__ = ("error",)

    def __init__(self, error: CodexProcessDied) -> None:
        self.error = error


ThreadMessage = Notification | ProcessExit

_envelope = msgspec.json.Decoder(wire.Envelope)
_scoped = msgspec.json.Decoder(wire.ThreadScoped)
_encoder = msgspec.json.Encoder()


class AppServer:
    """One running ``codex app-server`` and the JSON-RPC state around it."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        *,
        codex_path: str,
        cwd: str,
        handle_server_request: ServerRequestHandler,
    ) -> None:
        self._proc = proc
        self.codex_path = codex_path
        self.cwd = cwd
        self.started_at = time.monotonic()
        self._handle_server_request = handle_server_request
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[msgspec.Raw]]] = {}
        self._threads: dict[str, asyncio.Queue[ThreadMessage]] = {}
        self._server_requests: set[asyncio.Task[None]] = set()
        self._stderr: deque[bytes] = deque()
        self._stderr_size = 0
        self._death: CodexProcessDied | None = None
        self._closing = False
        self._reader = asyncio.create_task(self._read_stdout(), name=f"codex-stdout-{proc.pid}")
        self._stderr_reader = asyncio.create_task(self._read_stderr(), name=f"codex-stderr-{proc.pid}")

    @classmethod
    async def start(
        cls,
        codex_path: str,
        *,
        cwd: str,
        env: Mapping[str, str],
        handle_server_request: ServerRequestHandler,
        config_overrides: list[str] | None = None,
    ) -> AppServer:
        args = [codex_path, "app-server"]
        for override in config_overrides or []:
            args += ["-c", override]
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=dict(env),
                limit=LINE_LIMIT,
                start_new_session=True,
            )
        except OSError as exc:
            raise CodexStartFailed(f"could not start {codex_path} app-server in {cwd}: {exc}") from exc
        server = cls(proc, codex_path=codex_path, cwd=cwd, handle_server_request=handle_server_request)
        try:
            params = wire.InitializeParams(
                client_info=wire.ClientInfo(name="claif_cod", version=__version__),
                capabilities=wire.InitializeCapabilities(),
            )
            await server.request("initialize", params, wire.InitializeResult, timeout=INITIALIZE_TIMEOUT_S)
            await server.notify("initialized")
        except BaseException as exc:
            await server.close()
            if isinstance(exc, (CodexProcessDied, asyncio.TimeoutError, CodexRpcError)):
                raise CodexStartFailed(f"codex app-server did not complete its handshake: {exc}") from exc
            raise
        log.debug("appserver.started", pid=proc.pid, cwd=cwd)
        return server

    # --- state ---------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._death is None and not self._closing and self._proc.returncode is None

    @property
    def loaded_threads(self) -> int:
        return len(self._threads)

    def stderr_tail(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    # --- requests --------------------------------------------------------------------------

    async def request(self, method: str, params: object, result_type: type[T], *, timeout: float | None = None) -> T:
        raw = await self.request_raw(method, params, timeout=timeout)
        return msgspec.json.decode(raw, type=result_type)

    async def request_raw(self, method: str, params: object, *, timeout: float | None = None) -> msgspec.Raw:
        if self._death is not None:
            raise self._death
        request_id = next(self._ids)
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        try:
            await self._write(wire.OutgoingRequest(id=request_id, method=method, params=params))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)

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
        """The child's exit as the reader records it (with exit code and stderr), once it has."""
        if self._death is None and not self._closing:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
        return self._death or CodexProcessDied(self._proc.returncode, self.stderr_tail())

    # --- thread event routing --------------------------------------------------------------

    def subscribe(self, thread_id: str) -> asyncio.Queue[ThreadMessage]:
        queue: asyncio.Queue[ThreadMessage] = asyncio.Queue()
        if self._death is not None:
            queue.put_nowait(ProcessExit(self._death))
        self._threads[thread_id] = queue
        return queue

    def unsubscribe(self, thread_id: str) -> None:
        self._threads.pop(thread_id, None)

    # --- reading ----------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:  # a line beyond LINE_LIMIT: the stream cannot be trusted any more
                    log.error("appserver.line_too_long", pid=self.pid)
                    break
                if not line:
                    break
                self._dispatch(line)
        finally:
            returncode = await self._proc.wait()
            # wait() may return before the pipes are drained: the last words are often the reason.
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._stderr_reader), 1.0)
            self._die(CodexProcessDied(returncode, self.stderr_tail()))

    def _dispatch(self, line: bytes) -> None:
        try:
            envelope = _envelope.decode(line)
        except msgspec.DecodeError:
            log.warning("appserver.bad_line", pid=self.pid, length=len(line))
            return
        if envelope.method is not None and envelope.id is not None:
            task = asyncio.create_task(self._answer(envelope.id, envelope.method, envelope.params))
            self._server_requests.add(task)
            task.add_done_callback(self._server_requests.discard)
        elif envelope.method is not None:
            self._route(envelope.method, envelope.params)
        elif isinstance(envelope.id, int):
            pending = self._pending.get(envelope.id)
            if pending is None or pending[1].done():
                return
            method, future = pending
            if envelope.error is not None:
                future.set_exception(CodexRpcError(method, envelope.error.code, envelope.error.message))
            else:
                future.set_result(envelope.result)

    def _route(self, method: str, params: msgspec.Raw) -> None:
        try:
            thread_id = _scoped.decode(params).thread_id
        except msgspec.DecodeError:
            return
        if thread_id is not None and (queue := self._threads.get(thread_id)) is not None:
            queue.put_nowait(Notification(method, params))

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

    async def _read_stderr(self) -> None:
        stderr = self._proc.stderr
        assert stderr is not None
        while chunk := await stderr.read(4096):
            self._stderr.append(chunk)
            self._stderr_size += len(chunk)
            while self._stderr_size > STDERR_TAIL and len(self._stderr) > 1:
                self._stderr_size -= len(self._stderr.popleft())

    def _die(self, error: CodexProcessDied) -> None:
        if self._death is not None:
            return
        self._death = error
        if not self._closing:
            log.warning("appserver.died", pid=self.pid, returncode=error.returncode)
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        for queue in self._threads.values():
            queue.put_nowait(ProcessExit(error))

    # --- shutdown ---------------------------------------------------------------------------

    async def close(self, grace: float = 2.0) -> None:
        """Kill ladder: close stdin, then SIGTERM, then SIGKILL, always to the whole group."""
        self._closing = True
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        if not await _exited(proc, grace):
            _signal_group(proc.pid, signal.SIGTERM)
            if not await _exited(proc, grace):
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        # Grandchildren that outlived the leader are still in its group.
        _signal_group(proc.pid, signal.SIGKILL)
        for task in (self._reader, self._stderr_reader, *self._server_requests):
            task.cancel()
        await asyncio.gather(self._reader, self._stderr_reader, *self._server_requests, return_exceptions=True)
        self._die(CodexProcessDied(proc.returncode, "closed"))


async def _exited(proc: asyncio.subprocess.Process, timeout: float) -> bool:
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def child_environment(base: Mapping[str, str], *, codex_home: str | None, api_key: str | None) -> dict[str, str]:
    """The child's environment: ours minus service-manager plumbing, plus Codex's own variables."""
    env = {k: v for k, v in base.items() if k not in _NOT_FOR_CHILDREN}
    if codex_home:
        env["CODEX_HOME"] = codex_home
    if api_key:
        env["CODEX_API_KEY"] = api_key
    return env


_NOT_FOR_CHILDREN = frozenset(
    {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID"}
)
