"""Putting the daemon together: registry, systemd hand-offs, uvloop, and the serve loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from claif_cod.transport.socket_path import UnsafeSocketDirectory
from claif_codd import instance, systemd
from claif_codd.config import DaemonConfig
from claif_codd.conversation_registry import SqliteConversationStore
from claif_codd.registry import RegistrySchemaError, RegistryUnusable, SqliteSessionStore, check_usable
from claif_codd.response_registry import SqliteResponseStore
from claif_codd.server import AlreadyRunning, Daemon, HttpUnavailable, SocketPathTaken

Store = TypeVar("Store")

EXIT_STATE_UNUSABLE = 78
"""``EX_CONFIG``: the state directory or registry cannot be used (the message says how to fix it)."""


_MOVE_IT = "move it away or point --state-dir (or CLAIF_COD_STATE_DIR) elsewhere"
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def what_to_do(exc: BaseException) -> str:
    """The advice for a state file that cannot be used: a full disk (or a file size limit) is made
    room on, not worked around by moving the file away, which would leave its sessions behind."""
    full = isinstance(exc, OSError) and exc.errno in _NO_ROOM
    if full or (isinstance(exc, sqlite3.Error) and ("disk is full" in str(exc) or "disk I/O error" in str(exc))):
        also = "" if full else "; if there is room, the file may be damaged: move it away"
        return f"make room on its disk (or raise the file size limit, `ulimit -f`) and start again{also}"
    return _MOVE_IT


class StartFailed(Exception):
    """The daemon cannot serve; the message says why and how to fix it, ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _open_registry(what: str, path: Path, opener: Callable[[Path], Store]) -> Store:
    try:
        return opener(path)
    except (sqlite3.Error, OSError, RegistrySchemaError) as exc:
        raise StartFailed(f"{what} {path} cannot be opened: {exc}; {what_to_do(exc)}", EXIT_STATE_UNUSABLE) from None


async def serve(config: DaemonConfig, notifier: systemd.SystemdNotifier) -> None:
    assert config.state_dir is not None
    registry = config.state_dir / "sessions.db"
    response_registry = config.state_dir / "responses.db"
    try:  # before the socket exists: a daemon that cannot keep sessions or responses never listens
        check_usable(registry)
        check_usable(response_registry, "response registry")
    except RegistryUnusable as exc:
        raise StartFailed(str(exc), EXIT_STATE_UNUSABLE) from None
    try:  # held through the drain, while the socket no longer answers, until the registries close
        lock = instance.hold(config.state_dir, config.socket_path)
    except instance.StateInUse as exc:
        raise StartFailed(str(exc), 1) from None
    except OSError as exc:  # the lock file a symlink (refused), a directory...
        why = f"{config.state_dir / instance.LOCK_NAME} cannot be used: {exc.strerror or exc}; {what_to_do(exc)}"
        raise StartFailed(why, EXIT_STATE_UNUSABLE) from None
    # Opened before the socket is bound (the lock keeps every other daemon off these files): a daemon
    # whose registry cannot be opened (a newer claif-codd's, an I/O error) then never accepts a
    # connection. Opened after, `claif-codd start` and auto-start, which wait for the socket to accept,
    # could say "running" of a daemon about to exit with status 78.
    store = _open_registry("session registry", registry, SqliteSessionStore)
    try:
        responses = _open_registry("response registry", response_registry, SqliteResponseStore)
    except StartFailed:
        store.close()
        raise
    daemon = Daemon(config)
    daemon.engine.sessions = store
    daemon.responses.store = responses
    daemon.conversations.store = SqliteConversationStore(responses.connection)
    daemon.handle_signals()
    activated = systemd.listen_fds()
    try:
        await daemon.start(activated[0] if activated else None)
    except (AlreadyRunning, HttpUnavailable, SocketPathTaken, UnsafeSocketDirectory, OSError) as exc:
        store.close()
        responses.close()
        if isinstance(exc, OSError):  # the socket (a path too long for AF_UNIX, its directory...)
            raise StartFailed(f"cannot listen on {config.socket_path}: {exc.strerror or exc}", 1) from None
        raise StartFailed(str(exc), 1) from None
    http = f" and {daemon.http.url}" if daemon.http is not None else ""
    # What exists now (modules, classes, the engine) lives as long as the daemon: the collector's
    # full passes, every few hundred turns, no longer walk it (bench/daemon_gc.py).  Not collected
    # first: that would hold READY back ~18 ms for the little garbage start-up leaves.
    gc.freeze()
    notifier.notify("READY=1", f"STATUS=serving on {config.socket_path}{http}")
    watchdog = (
        asyncio.create_task(systemd.watchdog_loop(notifier, notifier.watchdog_interval))
        if notifier.watchdog_interval
        else None
    )
    try:
        await daemon.serve_until_stopped()
    finally:
        notifier.notify("STOPPING=1")
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        store.close()
        responses.close()
        os.close(lock)


def run(config: DaemonConfig) -> None:
    notifier = systemd.from_environment()  # also scrubs systemd's variables before any child starts
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        asyncio.run(serve(config, notifier))
    else:
        uvloop.run(serve(config, notifier))
