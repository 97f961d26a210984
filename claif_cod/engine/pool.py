"""Warm ``codex app-server`` processes, one per :class:`ProcessKey`.

Spawning costs tens of milliseconds and ~90 MiB, so processes are kept and shared; a cap
with LRU eviction of idle ones bounds memory (a process is idle when nobody is acquiring it, nobody
holds it and no request to it awaits an answer: the engine holds a process for every turn in flight on
it, and anything else that waits on a process holds it too; when every process is held the cap is
exceeded, and each time a hold is let go the idle processes above the cap are closed, least recently
used first, so a burst does not leave the pool above its cap), and a crashed (or hung, see
:mod:`claif_cod.engine.appserver`) process is replaced on the next request after a short,
growing back-off.

Crash-loop breaker: when starting the process for a key fails ``crash_loop_threshold``
times in a row within ``crash_loop_window`` seconds (a broken config, a missing library),
the breaker opens: requests for that key fail at once with :class:`CodexStartFailed`
("keeps crashing on start", with Codex's last words) instead of spawning again, until
``crash_loop_cooldown`` has passed.  Then one start is tried: success closes the breaker and
clears the history, failure opens it again for another cool-down.  A start that failed for a
setting that is not there (the working directory, the Codex home, the binary itself: uninstalled
under a running daemon) is no crash: the request says what is missing, and nothing is backed off from.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from claif_cod._log import get_logger
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.child_process import child_environment
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.errors import CodexNotFound, CodexStartFailed, InvalidRequest
from claif_cod.engine.home_turns import home_turn
from claif_cod.engine.liveness import Liveness
from claif_cod.engine.private_home import keep_home_private
from claif_cod.engine.server_requests import ServerRequestHandler

log = get_logger("claif_cod.pool")

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0

CRASH_LOOP_THRESHOLD = 5
CRASH_LOOP_WINDOW_S = 60.0
CRASH_LOOP_COOLDOWN_S = 30.0


@dataclass
class _Slot:
    server: AppServer | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy: int = 0
    failures: int = 0
    not_before: float = 0.0
    last_used: float = field(default_factory=time.monotonic)
    start_failures: list[float] = field(default_factory=list)
    """When the current streak of failed starts happened (monotonic), oldest first."""
    breaker_until: float = 0.0
    breaker_tripped: bool = False
    last_start_error: CodexStartFailed | None = None


def _missing_setting(key: ProcessKey) -> InvalidRequest | CodexNotFound | None:
    """Why ``key``'s process could not start when it is a setting that is not there (a directory, the
    binary), which no back-off mends: the request says so instead."""
    return key.missing_directory() or key.missing_binary()


class ProcessPool:
    def __init__(
        self,
        *,
        handle_server_request: ServerRequestHandler,
        max_processes: int = 8,
        base_env: Mapping[str, str] | None = None,
        liveness: Liveness | None = None,
        crash_loop_threshold: int | None = None,
        crash_loop_window: float | None = None,
        crash_loop_cooldown: float | None = None,
        config_overrides: list[str] | None = None,
    ) -> None:
        self._handle_server_request = handle_server_request
        self._max = max_processes
        self._base_env = base_env
        self._liveness = liveness
        self._config_overrides = config_overrides
        self._crash_threshold = CRASH_LOOP_THRESHOLD if crash_loop_threshold is None else crash_loop_threshold
        self._crash_window = CRASH_LOOP_WINDOW_S if crash_loop_window is None else crash_loop_window
        self._crash_cooldown = CRASH_LOOP_COOLDOWN_S if crash_loop_cooldown is None else crash_loop_cooldown
        self._slots: OrderedDict[ProcessKey, _Slot] = OrderedDict()
        self._home_locks: dict[str, asyncio.Lock] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._leaving: dict[ProcessKey, AppServer] = {}
        """A key's process being closed: its next one starts once it is gone."""
        self._holds: dict[AppServer, int] = {}
        self._closed = False

    def child_env(self, key: ProcessKey, api_key: str | None) -> dict[str, str]:
        """The environment the Codex process for ``key`` runs with (also for one-off Codex commands)."""
        return child_environment(self._base_env or os.environ, codex_home=key.codex_home, api_key=api_key)

    async def acquire(self, key: ProcessKey, api_key: str | None) -> AppServer:
        """A live process for ``key``, spawned if needed; pair with :meth:`release`."""
        if self._closed:
            raise CodexStartFailed("the engine is closed")
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        self._slots.move_to_end(key)
        slot.busy += 1
        try:
            async with slot.lock:
                if slot.server is None or not slot.server.alive:
                    slot.server = await self._spawn(key, slot, api_key)
                slot.last_used = time.monotonic()
                return slot.server
        except BaseException:
            slot.busy -= 1
            raise

    def release(self, key: ProcessKey) -> None:
        slot = self._slots.get(key)
        if slot is not None:
            slot.busy = max(0, slot.busy - 1)
            slot.last_used = time.monotonic()

    def hold(self, server: AppServer) -> None:
        """``server`` is working for someone (a turn, a pending approval): never evict it until :meth:`let_go`."""
        self._holds[server] = self._holds.get(server, 0) + 1

    def let_go(self, server: AppServer) -> None:
        left = self._holds.get(server, 0) - 1
        if left > 0:
            self._holds[server] = left
            return
        self._holds.pop(server, None)
        for slot in self._slots.values():
            if slot.server is server:
                slot.last_used = time.monotonic()
        self._trim()

    def _trim(self) -> None:
        """Back down to the cap once processes that were held beyond it are idle: least recently used first."""
        if len(self._slots) <= self._max:
            return  # the common case, after every turn
        live = self._live()
        for key in self._least_recent_idle(live, len(live) - self._max):
            server = self._slots.pop(key).server
            assert server is not None
            log.info("pool.trimmed", pid=server.pid, working_dir=key.working_dir)
            self._retire(server, key)

    def _live(self, excluding: ProcessKey | None = None) -> list[ProcessKey]:
        return [k for k, s in self._slots.items() if s.server is not None and s.server.alive and k != excluding]

    def _least_recent_idle(self, keys: list[ProcessKey], count: int) -> list[ProcessKey]:
        """Up to ``count`` of ``keys`` whose processes are idle, least recently used first."""
        idle = sorted((k for k in keys if self._idle(self._slots[k])), key=lambda k: self._slots[k].last_used)
        return idle[: max(0, count)]

    @contextlib.contextmanager
    def holding(self, server: AppServer) -> Iterator[None]:
        self.hold(server)
        try:
            yield
        finally:
            self.let_go(server)

    def holds(self, server: AppServer) -> int:
        return self._holds.get(server, 0)

    def _idle(self, slot: _Slot) -> bool:
        return slot.busy == 0 and (slot.server is None or not self._working(slot.server))

    def _working(self, server: AppServer) -> bool:
        """Held (a turn, an approval, a suspended tool call) or awaiting an answer from Codex."""
        return self._holds.get(server, 0) > 0 or bool(server.requests_in_flight)

    async def _spawn(self, key: ProcessKey, slot: _Slot, api_key: str | None) -> AppServer:
        previous = slot.server
        if previous is not None:  # dead or hung
            slot.server = None
            self._retire(previous, key)
        leaving = self._leaving.get(key)
        if leaving is not None:
            # Its whole process group goes first: one that hung, or was trimmed or evicted, may still
            # hold threads, which Codex lets one process write at a time ("already has an active
            # writer"). Waited for by every start for the key, also after a caller left mid-wait.
            await leaving.close()
        self._check_breaker(slot)
        delay = slot.not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await self._evict_for_room(key)
        try:
            server = await self._start(key, api_key)
        except CodexStartFailed as exc:
            missing = await asyncio.to_thread(_missing_setting, key)
            if missing is not None:  # the caller's setting to mend, not a crash to back off from
                raise missing from exc
            self._start_failed(key, slot, exc)
            raise
        slot.start_failures.clear()
        slot.breaker_tripped = False
        slot.breaker_until = 0.0
        slot.last_start_error = None
        if previous is not None:  # the previous one died: back off if it keeps happening
            slot.failures += 1
            slot.not_before = time.monotonic() + min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (slot.failures - 1))
        log.info("pool.spawned", pid=server.pid, working_dir=key.working_dir)
        return server

    async def _start(self, key: ProcessKey, api_key: str | None) -> AppServer:
        env = self.child_env(key, api_key)
        # Codex initialises sqlite state in CODEX_HOME on start-up and fails when two processes
        # do it at once, so start-ups sharing a home take turns (each takes ~50 ms): this pool's in
        # order, and other engines' and processes' beside them (engine/home_turns.py).
        home = key.codex_home or env.get("CODEX_HOME") or "~/.codex"
        async with self._home_locks.setdefault(home, asyncio.Lock()), home_turn(home):
            keep_home_private(env)
            return await AppServer.start(
                key.codex_path,
                cwd=key.working_dir,
                env=env,
                handle_server_request=self._handle_server_request,
                config_overrides=self._config_overrides,
                liveness=self._liveness,
            )

    async def recycle(self, server: AppServer, api_key: str | None) -> None:
        """Replace an idle process that no longer has a loaded thread with a fresh one.

        Codex's allocator keeps much of what unloaded threads used (200 sessions: about half of
        their memory stays with the process), so the process stays warm but starts over.
        A request for its key meanwhile waits for the fresh process; a failed start leaves the
        old one serving."""
        key = next((k for k, slot in self._slots.items() if slot.server is server), None)
        if key is None or self._closed:
            return
        slot = self._slots[key]
        async with slot.lock:
            if slot.server is not server or not server.alive or not self._idle(slot):
                return
            try:
                fresh = await self._start(key, api_key)
            except CodexStartFailed as exc:
                log.warning("pool.recycle_failed", pid=server.pid, error=str(exc)[:300])
                return
            if self._closed or slot.server is not server or self._working(server):
                self._retire(fresh)  # closed, or put to work meanwhile: keep what is serving
                return
            slot.server = fresh
        log.info("pool.recycled", old_pid=server.pid, pid=fresh.pid, working_dir=key.working_dir)
        self._retire(server)

    def _check_breaker(self, slot: _Slot) -> None:
        remaining = slot.breaker_until - time.monotonic()
        if remaining <= 0:
            return
        error = slot.last_start_error
        tail = (error.stderr_tail.strip() or str(error)) if error is not None else "no details"
        raise CodexStartFailed(
            f"codex app-server keeps crashing on start: {tail[-500:]}; not retrying for {remaining:.1f} s",
            stderr_tail=error.stderr_tail if error is not None else "",
        )

    def _start_failed(self, key: ProcessKey, slot: _Slot, error: CodexStartFailed) -> None:
        now = time.monotonic()
        slot.failures += 1
        slot.not_before = now + min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (slot.failures - 1))
        slot.start_failures = [t for t in slot.start_failures if now - t <= self._crash_window] + [now]
        slot.last_start_error = error
        if slot.breaker_tripped or len(slot.start_failures) >= self._crash_threshold:
            slot.breaker_tripped = True
            slot.breaker_until = now + self._crash_cooldown
            log.error(
                "pool.crash_loop",
                working_dir=key.working_dir,
                failures=len(slot.start_failures),
                cooldown=self._crash_cooldown,
                error=str(error),
            )

    def mark_healthy(self, key: ProcessKey) -> None:
        slot = self._slots.get(key)
        if slot is not None:
            slot.failures = 0
            slot.not_before = 0.0

    def _retire(self, server: AppServer, key: ProcessKey | None = None) -> None:
        """Close ``server`` in the background; the next process for ``key`` starts once it is gone."""
        server.start_closing()  # nobody may pick it up while its close waits for the loop
        task = asyncio.create_task(server.close(), name=f"codex-retire-{server.pid}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        if key is not None:
            self._leaving[key] = server
            task.add_done_callback(functools.partial(self._gone, key, server))

    def _gone(self, key: ProcessKey, server: AppServer, _closed: asyncio.Task[None]) -> None:
        if self._leaving.get(key) is server:
            del self._leaving[key]

    async def _evict_for_room(self, incoming: ProcessKey) -> None:
        """Below the cap before ``incoming`` spawns: idle processes close, least recently used first (one at
        a time, as idleness changes while a close is awaited); every process working exceeds the cap rather
        than fail a request."""
        while True:
            live = self._live(excluding=incoming)
            victims = self._least_recent_idle(live, len(live) - self._max + 1)
            if not victims:
                return
            server = self._slots.pop(victims[0]).server
            assert server is not None
            log.info("pool.evicted", pid=server.pid, working_dir=victims[0].working_dir)
            self._retire(server, victims[0])
            await server.close()

    def servers(self) -> list[tuple[ProcessKey, AppServer]]:
        return [(k, server) for k in self._live() if (server := self._slots[k].server) is not None]

    async def close(self) -> None:
        self._closed = True
        servers = [s.server for s in self._slots.values() if s.server is not None]
        self._slots.clear()
        await asyncio.gather(*(server.close() for server in servers), *self._retiring, return_exceptions=True)
