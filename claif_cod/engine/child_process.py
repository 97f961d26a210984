"""One `codex app-server` child as an OS process: spawned in its own process group, watched for
its exit, its stderr tail kept, and killed with a ladder that reaches every descendant.

Kept apart from :mod:`claif_cod.engine.appserver` (the JSON-RPC conversation over the child's
stdio) because none of this knows what the child says: it is about the child being there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from claif_cod._descriptors import shortage
from claif_cod._forked import let_go_after_fork, transport_name
from claif_cod.engine.ansi import strip_ansi
from claif_cod.engine.errors import CodexStartFailed

STDERR_TAIL = 8192
SPAWN_OPTIONS = ("-c", "features.plugins=false", "-c", "features.unbounded_connection_retries=false")
"""Work Codex need not do for us: the plugin marketplace sync runs ``git ls-remote`` against GitHub
on every start (a network call that hangs or fails offline).  And a model that cannot be reached
fails the turn once Codex has used its own retry budget (the provider's ``stream_max_retries``), as
openai's client raises ``APIConnectionError`` once its retries are spent: with its stable feature
``unbounded_connection_retries`` on, Codex (0.163 to current) retries a refused or unresolvable
connection for ever, every 5 s and longer ("Reconnecting... waiting for network"), whatever the
budget says, and the request waits out its whole ``timeout``.  ``-c`` rather than ``--disable``: a
Codex that does not know the feature ignores the key instead of refusing to start."""

EXIT_POLL_S = 0.1
"""Where no pidfd is available: how often the child's exit status is checked."""
KILL_WAIT_S = 10.0


class _Pipes(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's protocol for the child's pipes, except that stdout's bytes go to a reader as they
    arrive (see :meth:`ChildProcess.read_stdout`) instead of into a ``StreamReader``: no buffer and
    no task woken per read on the path of every message Codex sends."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=STDERR_TAIL, loop=loop)
        self._received: Callable[[bytes], None] | None = None
        self._closed: Callable[[], None] | None = None
        self._early: list[bytes] = []
        self._ended = False

    def read_stdout(self, received: Callable[[bytes], None], closed: Callable[[], None]) -> None:
        self._received, self._closed = received, closed
        for data in self._early:
            received(data)
        self._early.clear()
        if self._ended:
            closed()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        if fd != 1:
            super().pipe_data_received(fd, data)
            return
        assert isinstance(data, bytes)
        if self._received is None:
            self._early.append(data)
        else:
            self._received(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and not self._ended:
            self._ended = True
            if self._closed is not None:
                self._closed()
        super().pipe_connection_lost(fd, exc)
        if fd == 0 and exc is not None:
            # Nobody awaits stdin's closing (``StreamWriter.wait_closed``); a broken pipe to a child
            # that died would be logged as "Future exception was never retrieved" (CPython 3.10;
            # 3.11 stopped logging it).
            self._stdin_closed.exception()  # type: ignore[attr-defined]  # asyncio's own, since 3.8


class ChildProcess:
    """A started ``codex app-server``: its pipes, its exit, its stderr tail and its kill ladder."""

    def __init__(self, proc: asyncio.subprocess.Process, pipes: _Pipes) -> None:
        self.proc = proc
        self._pipes = pipes
        if proc.stdin is not None:  # a copy of its input, held in a forked child, would keep it from ending
            let_go_after_fork(self, [transport_name(proc.stdin.transport)])
        self._stderr: deque[bytes] = deque()
        self._stderr_size = 0
        self.stderr_reader = asyncio.create_task(self._read_stderr(), name=f"codex-stderr-{proc.pid}")
        self.exit = asyncio.create_task(self._wait_for_exit(), name=f"codex-exit-{proc.pid}")
        """The exit status, as soon as the child is gone."""

    @classmethod
    async def spawn(
        cls, codex_path: str, *, cwd: str, env: Mapping[str, str], config_overrides: list[str] | None = None
    ) -> ChildProcess:
        args = [codex_path, "app-server", *SPAWN_OPTIONS]
        for override in config_overrides or []:
            args += ["-c", override]
        loop = asyncio.get_running_loop()
        try:
            # asyncio.create_subprocess_exec, with our protocol for the pipes
            transport, pipes = await loop.subprocess_exec(
                lambda: _Pipes(loop),
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        except OSError as exc:
            reason = f"{exc}{_descriptors_note()}"
            raise CodexStartFailed(f"could not start {codex_path} app-server in {cwd}: {reason}") from exc
        return cls(asyncio.subprocess.Process(transport, pipes, loop), pipes)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def tasks(self) -> tuple[asyncio.Task[Any], ...]:
        """The watchers to cancel once the child is being given up."""
        return (self.stderr_reader, self.exit)

    def read_stdout(self, received: Callable[[bytes], None], closed: Callable[[], None]) -> None:
        """From now on, the child's stdout goes to ``received`` as it arrives (what came before, at
        once), and its end to ``closed``."""
        self._pipes.read_stdout(received, closed)

    def stderr_tail(self) -> str:
        """The last of what the child wrote to stderr, as text for messages: without its colours."""
        return strip_ansi(b"".join(self._stderr).decode("utf-8", "replace"))

    async def _read_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        while chunk := await stderr.read(4096):
            self._stderr.append(chunk)
            self._stderr_size += len(chunk)
            while self._stderr_size > STDERR_TAIL and len(self._stderr) > 1:
                self._stderr_size -= len(self._stderr.popleft())

    async def _wait_for_exit(self) -> int:
        """The exit status as soon as the child is gone.

        ``Process.wait()`` only returns once the pipes are closed too, which a descendant
        that inherited them can postpone forever; the status itself is known earlier.  A
        pidfd tells us the moment the child exits (Linux); elsewhere the status is polled.
        """
        proc = self.proc
        waiter = asyncio.ensure_future(proc.wait())
        gone, cleanup = _pidfd_exit(proc.pid)
        try:
            interval = EXIT_POLL_S if gone is None else None
            while proc.returncode is None:
                watched: list[asyncio.Future[Any]] = [waiter]
                if gone is not None and not gone.done():
                    watched.append(gone)
                await asyncio.wait(watched, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                if gone is not None and gone.done():
                    interval = 0.005  # the child watcher reaps it any moment now
            return proc.returncode
        finally:
            waiter.cancel()
            cleanup()

    async def exited(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self.exit), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def kill(self, grace: float) -> None:
        """Kill ladder: close stdin, then SIGTERM, then SIGKILL, always to the whole group.

        Each rung waits ``grace``; whatever outlived the leader in its group is killed last.
        """
        proc = self.proc
        try:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            if not await self.exited(grace):
                _signal_group(proc.pid, signal.SIGTERM)
                if not await self.exited(grace):
                    _signal_group(proc.pid, signal.SIGKILL)
                    await self.exited(KILL_WAIT_S)
        finally:
            # Grandchildren that outlived the leader are still in its group.
            _signal_group(proc.pid, signal.SIGKILL)
            # Our ends of its pipes, which would otherwise close only once their end of file is
            # read: a loop ended right after the ladder could find them open (a ResourceWarning).
            transport = getattr(proc, "_transport", None)  # asyncio's Process keeps it private
            if transport is not None:
                transport.close()


def _pidfd_exit(pid: int) -> tuple[asyncio.Future[None] | None, Callable[[], None]]:
    """A future set when process ``pid`` exits (before it is reaped), and its clean-up; Linux only."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None, lambda: None
    try:
        fd: int = pidfd_open(pid)
    except OSError:
        return None, lambda: None
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        loop.remove_reader(fd)
        if not gone.done():
            gone.set_result(None)

    try:
        loop.add_reader(fd, readable)
    except (NotImplementedError, OSError):
        os.close(fd)
        return None, lambda: None

    def cleanup() -> None:
        loop.remove_reader(fd)
        os.close(fd)

    return gone, cleanup


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
    | {"CLAIF_CODD_HTTP_TOKEN"}  # claif-codd's, exported in a shell that also runs in-process clients
)
"""Service-manager plumbing, and a secret Codex has no use for, which any command its model runs could print."""


def _descriptors_note() -> str:
    """What a failed start owes to the process's file descriptor limit, when it is at it: uvloop
    reports running out of them while making the child's pipes as ``[Errno -1] Unknown error -1``."""
    short = shortage()
    return "" if short is None else f" ({short})"
