"""Which Codex binary a request's settings select, what it accepts, and the process key they make.

Resolved once per distinct settings (a client sends the same ones with every request), and looked
at again in the background at most every :data:`RECHECK_S`: a binary upgraded under a long-running
daemon (``npm install -g``, ``pip install -U``) is probed anew, so that requests are judged, and new
processes started, by what it accepts now. A warm process keeps the binary it started with until
it is recycled; what depends on the version (engine/tools_only.py, engine/code_mode.py) asks each
process for its own (``AppServer.version``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping

from claif_cod._log import get_logger
from claif_cod.engine.config import CodexConfig, ProcessKey
from claif_cod.engine.discovery import CodexBinary, find_and_probe

log = get_logger("claif_cod.engine")

MAX_RESOLVED_KEYS = 256
RECHECK_S = 10.0
"""How long a probe stands before the binary's file is looked at again (a ``stat``, in a worker
thread; a changed file is probed again, ~0.2 s, all off the request's path)."""


class Binaries:
    def __init__(self, env: Mapping[str, str] | None) -> None:
        self._env = env
        self._binaries: dict[str | None, CodexBinary] = {}
        self._keys: dict[CodexConfig, ProcessKey] = {}
        """Resolved keys: a client sends the same settings with every request."""
        self._next_check = time.monotonic() + RECHECK_S
        self._checking: asyncio.Task[None] | None = None

    async def binary(self, codex_path: str | None) -> CodexBinary:
        """Find and probe once per requested path: the probe on a thread of its own (a hung binary
        holds no default-executor worker), shared with concurrent callers (see engine/discovery.py)."""
        cached = self._binaries.get(codex_path)
        if cached is None:
            cached = self._binaries[codex_path] = await find_and_probe(codex_path)
        return cached

    def known(self, path: str) -> CodexBinary | None:
        return next((b for b in self._binaries.values() if b.path == path), None)

    async def resolve(self, config: CodexConfig, warn: Callable[[str], None] | None = None) -> ProcessKey:
        """The process ``config`` selects; ``warn`` hears, on every request, what was changed to suit the binary."""
        if time.monotonic() >= self._next_check:
            self._recheck()
        key = self._keys.get(config)
        if key is None:
            binary = await self.binary(config.codex_path)
            key = ProcessKey.resolve(config, binary, default_home=(self._env or os.environ).get("CODEX_HOME"))
            if len(self._keys) >= MAX_RESOLVED_KEYS:
                self._keys.clear()  # a daemon serving many settings re-resolves them, as it did each request
            self._keys[config] = key
        if key.warnings and warn is not None:
            for warning in key.warnings:
                warn(warning)
        return key

    def _recheck(self) -> None:
        self._next_check = time.monotonic() + RECHECK_S
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check(), name="claif-cod-codex-recheck")

    async def _check(self) -> None:
        for codex_path, known in list(self._binaries.items()):
            try:
                now = await find_and_probe(codex_path)
            except Exception as exc:  # (gone, or broken: the next process start says so to its caller)
                log.warning("engine.codex_recheck_failed", codex_path=codex_path, error=str(exc))
                continue
            if now != known:
                log.info("engine.codex_changed", path=now.path, was=known.version, now=now.version)
                self._binaries[codex_path] = now
                self._keys = {c: k for c, k in self._keys.items() if c.codex_path != codex_path}

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking
