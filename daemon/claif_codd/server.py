"""The daemon: a private Unix socket in front of one shared engine.

Start-up binds the socket race-free (0600 via umask, in a checked 0700 directory) or takes
it from systemd; each accepted peer must be our own uid.  Shutdown follows uvicorn: stop
accepting, let in-flight turns drain up to a deadline, then cancel (which interrupts the
turns), reap the Codex children and remove the socket only if it is still ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from claif_cod._log import get_logger
from claif_cod.engine.engine import Engine
from claif_cod.engine.sessions import SessionStore
from claif_cod.openai_compat.service import ChatService
from claif_cod.protocol import DEFAULT_MAX_FRAME
from claif_cod.transport.socket_path import default_socket_path, ensure_directory
from claif_codd.connection import Connection
from claif_codd.methods import Methods

log = get_logger("claif_codd.server")


class AlreadyRunning(Exception):
    """Another daemon answers on the socket path."""


@dataclass
class DaemonConfig:
    socket_path: Path = field(default_factory=default_socket_path)
    state_dir: Path | None = None
    idle_timeout: float | None = None
    max_frame_size: int = DEFAULT_MAX_FRAME
    max_connections: int = 256
    max_inflight_per_connection: int = 128
    max_outbound_bytes: int = 64 * 1024 * 1024
    max_processes: int = 8
    approval_timeout: float = 120.0
    drain_timeout: float = 60.0


class Daemon:
    def __init__(self, config: DaemonConfig, *, sessions: SessionStore | None = None) -> None:
        self.config = config
        self.engine = Engine(max_processes=config.max_processes, sessions=sessions)
        self.service = ChatService(self.engine)
        self.methods = Methods(self)
        self.connections: set[Connection] = set()
        self.started_at = time.monotonic()
        self._server: asyncio.AbstractServer | None = None
        self._socket_inode: int | None = None
        self._stop = asyncio.Event()
        self._last_activity = time.monotonic()

    # --- start ------------------------------------------------------------------------------

    async def start(self, listening: socket.socket | None = None) -> None:
        sock = listening if listening is not None else self._bind()
        self._server = await asyncio.start_unix_server(self._accept, sock=sock, limit=self.config.max_frame_size)
        log.info("daemon.listening", socket=str(self.config.socket_path), pid=os.getpid())

    def _bind(self) -> socket.socket:
        path = self.config.socket_path
        ensure_directory(path.parent)
        if path.exists() or path.is_symlink():
            if _answers(path):
                raise AlreadyRunning(f"a daemon is already listening on {path} (stop it with `claif-codd stop`)")
            log.info("daemon.stale_socket_removed", socket=str(path))
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        sock.listen(128)
        self._socket_inode = os.stat(path).st_ino
        return sock

    # --- connections ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock: socket.socket | None = writer.get_extra_info("socket")
        uid = _peer_uid(sock) if sock is not None else None
        if uid != os.getuid():
            log.warning("daemon.foreign_peer_refused", peer_uid=uid)
            writer.transport.abort()
            return
        if len(self.connections) >= self.config.max_connections or self._stop.is_set():
            writer.transport.abort()
            return
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        self.touch()
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self.touch()

    def touch(self) -> None:
        self._last_activity = time.monotonic()

    # --- running and stopping ----------------------------------------------------------------

    def request_shutdown(self) -> None:
        self._stop.set()

    async def serve_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_shutdown)
        idle = asyncio.create_task(self._idle_watch()) if self.config.idle_timeout else None
        try:
            await self._stop.wait()
        finally:
            if idle is not None:
                idle.cancel()
            await self.shutdown()

    async def _idle_watch(self) -> None:
        assert self.config.idle_timeout is not None
        while True:
            await asyncio.sleep(min(1.0, self.config.idle_timeout / 4))
            busy = self.connections or self.engine.turns_in_flight
            if busy:
                self.touch()
            elif time.monotonic() - self._last_activity >= self.config.idle_timeout:
                log.info("daemon.idle_exit", idle_timeout=self.config.idle_timeout)
                self.request_shutdown()
                return

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + self.config.drain_timeout
        while self.engine.turns_in_flight and time.monotonic() < deadline:  # noqa: ASYNC110 - polled, no event
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.close()
        tasks = [t for conn in self.connections for t in conn.tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.engine.close()
        self._remove_socket()
        log.info("daemon.stopped")

    def _remove_socket(self) -> None:
        """Unlink the socket only if the file there is the one we bound."""
        path = self.config.socket_path
        if self._socket_inode is None:
            return
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == self._socket_inode:
                path.unlink()


def _peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            return False
        raise
    finally:
        probe.close()
    return True
