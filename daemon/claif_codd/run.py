"""Putting the daemon together: registry, systemd hand-offs, uvloop, and the serve loop."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from claif_cod._log import get_logger
from claif_codd import systemd
from claif_codd.registry import SqliteSessionStore
from claif_codd.response_registry import SqliteResponseStore
from claif_codd.server import AlreadyRunning, Daemon, DaemonConfig, HttpUnavailable

log = get_logger("claif_codd.run")


async def serve(config: DaemonConfig, notifier: systemd.SystemdNotifier) -> None:
    assert config.state_dir is not None
    daemon = Daemon(config)
    activated = systemd.listen_fds()
    try:
        await daemon.start(activated[0] if activated else None)
    except (AlreadyRunning, HttpUnavailable) as exc:
        log.error("daemon.start_failed", error=str(exc))
        print(f"claif-codd: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    # Opened only once the socket is ours: a second daemon must never touch the live registry.
    store = SqliteSessionStore(config.state_dir / "sessions.db")
    daemon.engine.sessions = store
    responses = SqliteResponseStore(config.state_dir / "responses.db")
    daemon.responses.store = responses
    http = f" and {daemon.http.url}" if daemon.http is not None else ""
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


def run(config: DaemonConfig) -> None:
    notifier = systemd.from_environment()  # also scrubs systemd's variables before any child starts
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        asyncio.run(serve(config, notifier))
    else:
        uvloop.run(serve(config, notifier))
