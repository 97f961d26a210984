"""Choosing the backend per request: the daemon when it answers, else the engine in this process.

``auto`` (default) prefers the daemon and falls back to the in-process engine; ``require``
fails with a connection error when no daemon answers; ``off`` never looks for one.  With
``CLAIF_COD_AUTOSTART=1``, ``auto`` and ``require`` start a daemon first when none runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from claif_cod._log import get_logger
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail
from claif_cod.openai_compat.options import RequestOptions, python_warning
from claif_cod.protocol import ConversationRequest
from claif_cod.transport.autostart import ENV_AUTOSTART, DaemonStartFailed, autostart_enabled, ensure_daemon
from claif_cod.transport.backend import JsonReply, Reply
from claif_cod.transport.daemon_backend import DaemonBackend
from claif_cod.transport.daemon_client import DaemonConnection
from claif_cod.transport.daemon_unusable import DaemonMismatch, DaemonUnavailable, UntrustedDaemon, other_release
from claif_cod.transport.socket_path import UnsafeSocketDirectory, default_socket_path
from claif_cod.transport.stored_routes import StoredResponseAction

if TYPE_CHECKING:
    from claif_cod.transport.in_process import InProcessBackend

DaemonMode = Literal["auto", "require", "off"]
ENV_DAEMON = "CLAIF_COD_DAEMON"
log = get_logger("claif_cod.select")


def daemon_mode(requested: str | None) -> DaemonMode:
    value = requested or os.environ.get(ENV_DAEMON) or "auto"
    if value not in ("auto", "require", "off"):
        raise ValueError(f"daemon must be 'auto', 'require' or 'off', not {value!r}")
    return cast(DaemonMode, value)


def _in_process_backend() -> type[InProcessBackend]:
    from claif_cod.transport.in_process import InProcessBackend

    return InProcessBackend


_OTHER_RELEASES_SAID: set[tuple[Path, str]] = set()
"""The daemons of another release this process was told of, with their release: said once each."""


def _say_other_release(path: Path, conn: DaemonConnection) -> None:
    """A daemon of another claif_cod release serves this client (same protocol): a ``UserWarning``,
    once per process, that it is to be restarted. Otherwise nothing says so until a request needs
    what it lacks, and the client runs on what the installed release changed or mended."""
    assert conn.hello is not None  # (open() said hello)
    said = other_release(path, conn.hello.package_version)
    if said is not None and (path, conn.hello.package_version) not in _OTHER_RELEASES_SAID:
        _OTHER_RELEASES_SAID.add((path, conn.hello.package_version))
        python_warning(said)


class SelectingBackend:
    """Routes each request to the daemon or the local engine, reconnecting as needed."""

    def __init__(self, mode: DaemonMode) -> None:
        self.mode = mode
        self.daemon: DaemonBackend | None = None
        self.local: InProcessBackend | None = None
        self._connecting = asyncio.Lock()
        self._autostart_failed = False
        self._had_daemon = False
        """The daemon served this client once: running Codex here instead is news its caller must hear."""

    @property
    def ran_here(self) -> bool:
        """Codex ran in this process, and no daemon connection was made since: a named session goes on
        here. Not so for a ``require`` client whose daemon stopped answering: its requests failed."""
        return self.local is not None and (self.daemon is None or not self.daemon.conn.alive)

    def stay_here(self) -> None:
        """Run Codex in this process from now on: a named session that went on here when the daemon
        stopped answering would otherwise go back to the daemon's copy, without the turns run here, as
        soon as a daemon answers again."""
        self.mode = "off"

    async def current(self) -> DaemonBackend | InProcessBackend:
        if self.mode != "off":
            try:
                return await self._daemon()
            except DaemonUnavailable as exc:
                if self.mode == "require":
                    raise APIFailure("connection", 0, ErrorDetail(str(exc), "connection_error")) from None
                if isinstance(exc, UntrustedDaemon):
                    log.warning("select.untrusted_daemon", reason=str(exc))
                if isinstance(exc, DaemonMismatch):  # said once: the user must restart it
                    python_warning(f"{exc}; meanwhile Codex runs in this process")
                elif self._had_daemon:  # said once: its named sessions would split silently otherwise
                    self._had_daemon = False
                    python_warning(
                        f"{exc}: this client now runs Codex in its own process; its named sessions and stored "
                        "responses go on here without what claif-codd holds (use daemon='require' to fail instead)"
                    )
                log.debug("select.in_process", reason=str(exc))
        if self.local is None:
            # The engine's modules, loaded only to run Codex here; in a worker thread, since importing
            # them takes 0.1-0.2 s, which this loop must not stall for (asyncio's debug mode reports it).
            backend = await asyncio.to_thread(_in_process_backend)
            if self.local is None:
                self.local = backend()
        return self.local

    async def _daemon(self) -> DaemonBackend:
        async with self._connecting:
            if self.daemon is not None and self.daemon.conn.alive:
                return self.daemon
            if self.daemon is not None:
                await self.daemon.aclose()
                self.daemon = None
            path = default_socket_path()
            if autostart_enabled() and not self._autostart_failed:
                await self._autostart(path)
            self.daemon = DaemonBackend(await DaemonConnection.open(path))
            self._had_daemon = True
            _say_other_release(path, self.daemon.conn)
            return self.daemon

    async def _autostart(self, path: Path) -> None:
        """Start a daemon, once: a start that failed is not tried again by this client (each try could
        wait :data:`~claif_cod.transport.autostart.START_TIMEOUT_S`), which then uses a daemon someone
        else started, or (``auto``) runs Codex in-process."""
        try:
            await asyncio.to_thread(ensure_daemon, path)
        except (DaemonStartFailed, OSError, UnsafeSocketDirectory) as exc:
            self._autostart_failed = True
            log.warning("select.autostart_failed", reason=str(exc))
            raise DaemonUnavailable(f"could not start claif-codd ({ENV_AUTOSTART}=1): {exc}") from None

    async def chat(self, body: bytes, options: RequestOptions) -> Reply:
        return await (await self.current()).chat(body, options)

    async def models(self, options: RequestOptions) -> JsonReply:
        return await (await self.current()).models(options)

    async def responses(self, body: bytes, options: RequestOptions) -> Reply:
        return await (await self.current()).responses(body, options)

    async def compact(self, body: bytes, options: RequestOptions) -> JsonReply:
        return await (await self.current()).compact(body, options)

    async def retrieve_response(self, response_id: str, options: RequestOptions) -> JsonReply:
        return await (await self.current()).retrieve_response(response_id, options)

    async def stored_response(self, action: StoredResponseAction) -> JsonReply:
        return await (await self.current()).stored_response(action)

    async def conversation(self, action: ConversationRequest) -> JsonReply:
        return await (await self.current()).conversation(action)

    async def aclose(self) -> None:
        for backend in (self.daemon, self.local):
            if backend is not None:
                await backend.aclose()
