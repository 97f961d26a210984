"""The daemon: a private Unix socket in front of one shared engine.

Start-up binds the socket race-free (0600 via umask, in a checked 0700 directory) or takes
it from systemd; each accepted peer must be our own uid.  Shutdown follows uvicorn: stop
accepting, let in-flight requests drain up to a deadline (new work meanwhile gets a retryable
OVERLOADED "shutting down"), then cancel what is left (which interrupts the turns) answering
each with that error, flush the replies, reap the Codex children and remove the socket only
if it is still ours.  SIGHUP (a terminal that ran ``serve`` closed) drains as SIGTERM does, and so
does the loss of the socket file; a second SIGTERM or SIGINT ends the drain at once.

A connection beyond ``max_connections``, or accepted with few file descriptors left (see
:mod:`claif_cod._descriptors`), is told so with an OVERLOADED error frame (and any request it sends
within a short grace gets the same answer by id) and then closed, never dropped silently; the
daemon's own commands (``claif-codd status``, ``stop``) are let in all the same (:mod:`.refusal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claif_cod._descriptors import shortage
from claif_cod._log import get_logger
from claif_cod.engine.engine import Engine
from claif_cod.engine.sessions import SessionStore
from claif_cod.openai_compat.conversations_service import ConversationsService
from claif_cod.openai_compat.responses_service import ResponsesService
from claif_cod.openai_compat.service import ChatService
from claif_cod.protocol import Overloaded
from claif_cod.transport.socket_path import ensure_directory, listening, peer_uid
from claif_codd.config import DaemonConfig
from claif_codd.connection import Admitted, Connection
from claif_codd.http.settings import HttpSettings
from claif_codd.methods import Methods
from claif_codd.refusal import refuse

if TYPE_CHECKING:
    from claif_codd.http.app import HttpEndpoint

log = get_logger("claif_codd.server")

CONTROL_CONNECTIONS = 4
"""Connections of the daemon's own commands let in beyond its limits at once (see :mod:`.refusal`)."""
CONNECTIONS_RETRY_AFTER_S = 1.0
SHUTDOWN_RETRY_AFTER_S = 1.0
CLOSE_TIMEOUT_S = 5.0
"""How long shutdown waits for connections to flush their last replies."""
RAISE_LIMIT = "raise it (`ulimit -n` where claif-codd starts, LimitNOFILE= in its systemd unit) or close some clients"
"""What a connection refused for want of file descriptors is told to do."""
SOCKET_CHECK_S = 2.0
"""How often a daemon checks that its socket file is still the one it bound (see ``_socket_watch``)."""

_KEEP_SOCKET_FILE: dict[str, Any] = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}
"""From Python 3.13 on, asyncio and uvloop unlink a Unix server's socket file when the server
closes, which the drain does first: the file must stay until the daemon exits (refusing
connections meanwhile), and then go only if the daemon bound it (:meth:`Daemon._remove_socket`):
under socket activation it is systemd's."""


class AlreadyRunning(Exception):
    """Another daemon answers on the socket path."""


class SocketPathTaken(Exception):
    """Something other than a socket is where the socket should be: it is not ours to remove."""


class HttpUnavailable(Exception):
    """The ``--http`` address could not be listened on."""


class Daemon:
    def __init__(self, config: DaemonConfig, *, sessions: SessionStore | None = None) -> None:
        self.config = config
        self.engine = Engine(
            max_processes=config.max_processes,
            sessions=sessions,
            thread_idle_timeout=config.thread_idle_timeout,
            max_suspended_turns=config.max_suspended_turns,
        )
        self.service = ChatService(self.engine)
        self.conversations = ConversationsService()
        self.responses = ResponsesService(self.engine, conversations=self.conversations)
        self.methods = Methods(self)
        self.connections: set[Connection] = set()
        self.turn_requests = 0
        """Turn-starting requests in flight across all connections (see ``max_turns_in_flight``)."""
        self.started_at = time.monotonic()
        self._server: asyncio.AbstractServer | None = None
        self.http: HttpEndpoint | None = None
        self._socket_id: tuple[int, int] | None = None
        self._stop = asyncio.Event()
        self._drain_now = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._adopted: dict[asyncio.Task[None], str] = {}
        """Requests whose connection closed but whose turn continues a session other clients follow, with
        that session."""
        self._last_activity = time.monotonic()

    # --- start ------------------------------------------------------------------------------

    async def start(self, activated: socket.socket | None = None) -> None:
        _no_inherited_fds_for_children()
        if self.config.http is not None:  # first: whoever reaches the socket finds the HTTP endpoint up too
            if activated is None:
                self._check_not_running()  # before taking the port (_bind checks again as it binds)
            await self._start_http(self.config.http)
        sock = activated if activated is not None else self._bind()
        # The backlog again here: the loop re-listens the socket with its own default (100 under uvloop),
        # and a burst of clients connecting at once must not overflow it.
        self._server = await asyncio.start_unix_server(
            self._accept, sock=sock, limit=self.config.max_frame_size, backlog=socket.SOMAXCONN, **_KEEP_SOCKET_FILE
        )
        log.info("daemon.listening", socket=str(self.config.socket_path), pid=os.getpid())

    async def _start_http(self, settings: HttpSettings) -> None:
        from claif_codd.http.app import HttpEndpoint  # aiohttp is imported only when --http is asked for

        self.http = HttpEndpoint(self, settings)
        try:
            await self.http.start()
        except OSError as exc:
            await self.http.close()
            self.http = None
            raise HttpUnavailable(f"--http {settings.host}:{settings.port}: {exc.strerror or exc}") from None

    def _check_not_running(self) -> None:
        path = self.config.socket_path
        if listening(path):
            raise AlreadyRunning(f"a daemon is already listening on {path} (stop it with `claif-codd stop`)")

    def _bind(self) -> socket.socket:
        path = self.config.socket_path
        ensure_directory(path.parent)
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(path).st_mode
            if not (stat.S_ISSOCK(mode) or stat.S_ISLNK(mode)):  # a file given as --socket by mistake
                raise SocketPathTaken(f"{path} exists and is not a socket: move it away, or choose another --socket")
            self._check_not_running()
            log.info("daemon.stale_socket_removed", socket=str(path))
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        sock.listen(socket.SOMAXCONN)
        self._socket_id = _file_id(path)
        return sock

    # --- connections ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A peer's connection, served or refused.  Cancelled (only the loop's end cancels it: a peer
        that connected as the daemon stopped), it ends as closed: Python 3.11's stream server logs
        its handler's cancellation as an "Exception in callback" with a traceback."""
        try:
            await self._peer(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()

    async def _peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock: socket.socket | None = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        if uid != os.getuid():
            log.warning("daemon.foreign_peer_refused", peer_uid=uid)
            writer.transport.abort()
            return
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        if self.draining:
            await refuse(reader, writer, self.shutdown_error("claif-codd is shutting down"), **self._refusing())
            return
        admitted: Admitted | None = None
        if len(self.connections) >= self.config.max_connections:
            limit = self.config.max_connections
            error = Overloaded.retry_after(
                CONNECTIONS_RETRY_AFTER_S, f"claif-codd is serving its maximum of {limit} connections"
            )
            refused = functools.partial(log.warning, "daemon.connection_refused", limit="max_connections", value=limit)
            admitted = await refuse(reader, writer, error, **self._refusing(refused))
            if admitted is None:
                return
        elif (short := shortage()) is not None:
            error = Overloaded.retry_after(CONNECTIONS_RETRY_AFTER_S, f"claif-codd is {short}: {RAISE_LIMIT}")
            refused = functools.partial(
                log.warning, "daemon.connection_refused", limit="file_descriptors", open=short.open, value=short.limit
            )
            admitted = await refuse(reader, writer, error, linger=False, **self._refusing(refused))
            if admitted is None:
                return
        conn = Connection(self, reader, writer, admitted)
        self.connections.add(conn)
        self.touch()
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self.touch()

    def _refusing(self, refused: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """What :func:`refuse` needs besides the error: the daemon's own commands are let in while
        fewer than :data:`CONTROL_CONNECTIONS` of theirs are beyond the limits (not while draining)."""

        def admit() -> bool:
            return sum(conn.control_only for conn in self.connections) < CONTROL_CONNECTIONS

        return {"max_frame": self.config.max_frame_size, "refused": refused, "admit": None if self.draining else admit}

    def adopt(self, task: asyncio.Task[None], session: str) -> None:
        """Keep ``task``, a turn of ``session``, running after its connection closed, for as long as a
        connection follows ``session`` (see :meth:`unfollowed`; a shutdown cancels it too)."""
        self._adopted[task] = session
        task.add_done_callback(self._disown)

    def _disown(self, task: asyncio.Task[None]) -> None:
        self._adopted.pop(task, None)

    def unfollowed(self) -> list[asyncio.Task[None]]:
        """Cancel the turns kept running for followers that have all left, and return them.  A client's
        connections close one after the other when it dies (a ``CodexClient`` holds its engine loop's
        and a thread's): the one left open a moment longer was taken for a follower, and the turn ran
        on (a stalled model's until Codex's idle timeout) with nobody left to see it, the session's
        next turn and a drain waiting behind it."""
        followed = {session for conn in self.connections if not conn.closed for session in conn.sessions}
        gone = [task for task, session in self._adopted.items() if session not in followed]
        for task in gone:
            task.cancel()  # which interrupts its turn; the request was answered to nobody: it leaves no trace
        return gone

    def touch(self) -> None:
        self._last_activity = time.monotonic()

    # --- running and stopping ----------------------------------------------------------------

    @property
    def draining(self) -> bool:
        """Shutting down: no new connections or work, in-flight requests may finish."""
        return self._stop.is_set()

    def shutdown_error(self, message: str) -> Overloaded:
        return Overloaded.retry_after(SHUTDOWN_RETRY_AFTER_S, message)

    def request_shutdown(self) -> None:
        self._stop.set()

    def _on_signal(self, signum: int) -> None:
        if self.draining and signum == signal.SIGHUP:
            return  # a closing terminal may send more than one: only SIGTERM or SIGINT cuts a drain short
        if self.draining:
            log.warning("daemon.drain_cut_short", signal=signal.Signals(signum).name)
            self._drain_now.set()
        else:
            log.info("daemon.signal", signal=signal.Signals(signum).name)
            self.request_shutdown()

    def handle_signals(self) -> None:
        """Signals from now on stop the daemon by a drain. Taken before :meth:`start` binds the
        socket: a SIGTERM once it is bound (a starter that gave up on it) must remove it, not kill
        the process where it stands and leave the file behind; one before :meth:`serve_until_stopped`
        makes that shut down at once."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # HUP: `serve`'s terminal closed
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGUSR1, self.log_stats)

    async def serve_until_stopped(self) -> None:
        watches = [asyncio.create_task(self._idle_watch())] if self.config.idle_timeout else []
        if self._socket_id is not None:  # a socket systemd passed us is systemd's to look after
            watches.append(asyncio.create_task(self._socket_watch()))
        try:
            await self._stop.wait()
        finally:
            for watch in watches:
                watch.cancel()
            await self.shutdown()

    def log_stats(self) -> None:
        """On SIGUSR1: one log line with the daemon's live counts (leak hunting, soak tests).

        ``heap_blocks`` is CPython's count of live allocations once garbage is collected: steady
        while RSS creeps means the allocator's fragmentation, growing means something is kept."""
        gc.collect()
        log.info(
            "daemon.stats",
            tasks=len(asyncio.all_tasks()),
            heap_blocks=sys.getallocatedblocks(),
            connections=len(self.connections),
            requests=sum(len(conn.tasks) for conn in self.connections),
            turn_requests=self.turn_requests,
            turns_in_flight=self.engine.turns_in_flight,
            processes=len(self.engine.processes()),
            threads=len(self.engine.threads.loaded()),
        )

    async def _idle_watch(self) -> None:
        assert self.config.idle_timeout is not None
        while True:
            await asyncio.sleep(min(1.0, self.config.idle_timeout / 4))
            busy = self.connections or self._busy()
            if busy:
                self.touch()
            elif time.monotonic() - self._last_activity >= self.config.idle_timeout:
                log.info("daemon.idle_exit", idle_timeout=self.config.idle_timeout)
                self.request_shutdown()
                return

    async def _socket_watch(self) -> None:
        """A daemon whose socket file is gone (removed by hand, or with ``$XDG_RUNTIME_DIR`` at the
        user's last logout) or replaced can be reached by no new client, nor stopped by ``claif-codd
        stop``, and would hold the state directory from the next ``start``: it drains and exits."""
        while True:
            await asyncio.sleep(SOCKET_CHECK_S)
            if not self._socket_is_ours():
                log.warning("daemon.socket_lost", socket=str(self.config.socket_path))
                self.request_shutdown()
                return

    def _socket_is_ours(self) -> bool:
        try:
            return _file_id(self.config.socket_path) == self._socket_id
        except OSError:  # gone, or its directory: unreachable either way
            return False

    def _busy(self, *, draining: bool = False) -> bool:
        """Work in flight.  A turn suspended on tool calls keeps the daemon up, but a drain does not
        wait for it: its results could not get in (new work is refused) and arrive as a transcript later."""
        http_requests = self.http is not None and bool(self.http.requests)
        turns = self.engine.turns_in_flight - (len(self.engine.suspensions) if draining else 0)
        busy = any(conn.tasks for conn in self.connections) or bool(self._adopted)
        return busy or http_requests or turns > 0

    async def shutdown(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        if self.http is not None:
            await self.http.stop_accepting()
        timeout = self.config.drain_timeout
        if self._busy():
            requests = sum(len(conn.tasks) for conn in self.connections)
            log.info("daemon.draining", requests=requests, turns=self.engine.turns_in_flight, drain_timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._busy(draining=True) and time.monotonic() < deadline and not self._drain_now.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        why = "a second signal cut the drain short" if self._drain_now.is_set() else f"the {timeout:g} s drain deadline"
        error = self.shutdown_error(f"claif-codd is shutting down: the request was interrupted ({why})")
        tasks: list[asyncio.Task[Any]] = [t for conn in list(self.connections) for t in conn.cancel_requests(error)]
        if self.http is not None:
            tasks += self.http.cancel_requests(str(error))
        for task in list(self._adopted):
            task.cancel()
            tasks.append(task)
        if tasks:
            log.warning("daemon.drain_timeout", interrupted=len(tasks), drain_timeout=timeout)
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self.connections):
            conn.close()
        handlers = [h for h in self._handlers if h is not asyncio.current_task()]
        if handlers:  # each connection flushes its last replies (bounded by its writer's own timeout)
            await asyncio.wait(handlers, timeout=CLOSE_TIMEOUT_S)
        if self.http is not None:
            await self.http.close()
        await self.engine.close()
        self._remove_socket()
        log.info("daemon.stopped")

    def _remove_socket(self) -> None:
        """Unlink the socket only if the file there is the one we bound."""
        if self._socket_id is not None and self._socket_is_ours():
            with contextlib.suppress(FileNotFoundError):
                self.config.socket_path.unlink()


def _file_id(path: Path) -> tuple[int, int]:
    """A file's device and inode: a runtime directory made anew (a tmpfs) may reuse an inode number."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _no_inherited_fds_for_children() -> None:
    """Mark every fd above stdio close-on-exec, so no Codex child (nor what Codex runs) inherits one.

    Python opens its own fds close-on-exec, but fds the daemon was started with (by a shell, a
    supervisor, a test's ``pass_fds``) may be inheritable, and uvloop's ``subprocess_exec`` ignores
    ``close_fds``: each such fd would reach every Codex child. Systemd's LISTEN_FDS are already
    taken (close-on-exec) by the time ``start`` runs.
    """
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        fds = [int(name) for name in os.listdir(fd_dir)]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):  # e.g. the fd listdir itself used, closed by now
                os.set_inheritable(fd, False)
