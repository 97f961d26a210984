"""Unloading idle threads, so that a long-lived engine does not keep every conversation in Codex.

A loaded thread costs its Codex process 1.2 to 2 MiB for as long as the process lives.  A thread
nobody used for ``timeout`` seconds is unsubscribed; Codex, started with
:data:`UNLOAD_DELAY_OVERRIDE`, then unloads it at once (``thread/closed`` follows).  The engine
forgets it: a named session's persisted thread is resumed from its rollout on its next turn
(~30 ms), and an anonymous conversation's ephemeral thread, which has no rollout, is started
again and seeded from the history its caller re-sends.

Unloading returns only part of a thread's memory: Codex's allocator keeps about half of it (200
sessions: +237 MiB loaded, +129 MiB still held once all were unloaded).  So a process left with no
loaded thread by a sweep is replaced by a fresh one (:meth:`ProcessPool.recycle`), which keeps it
warm and gives the rest back.

A request may hold a thread that the sweep takes (it looked the thread up just before), or come
for it while it is being unloaded: it resumes the thread, but only once Codex has closed it
(:meth:`IdleThreads.gone`).  A resume sent before the unsubscribe would be undone by it (the next
``turn/start`` failed, "agent loop died unexpectedly", or hung until its deadline), and one sent
between the unsubscribe's answer and ``thread/closed`` (~3 ms) is refused ("thread ... is closing;
retry thread/resume after the thread is closed"), which a named session took for a lost rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from claif_cod._log import get_logger
from claif_cod.engine import wire
from claif_cod.engine.thread_messages import Notification, ProcessExit
from claif_cod.engine.waiting import within

if TYPE_CHECKING:
    from claif_cod.engine.appserver import AppServer
    from claif_cod.engine.conversations import ConversationIndex
    from claif_cod.engine.inbox import Inbox
    from claif_cod.engine.thread_handle import ThreadHandle
    from claif_cod.engine.thread_messages import ThreadMessage

log = get_logger("claif_cod.engine")

DEFAULT_THREAD_IDLE_TIMEOUT_S = 600.0
"""How long a thread may sit unused before it is unloaded, unless the engine is told otherwise."""

UNLOAD_DELAY_OVERRIDE = "thread_unload_delay_secs=0"
"""Given to every ``codex app-server``: unload a thread as soon as we unsubscribe it (Codex's
own default is 30 minutes).  We only unsubscribe threads we decided are idle."""

CLOSE_WAIT_S = 5.0
"""How long an unsubscribed thread may take to close (``thread/closed``, ~3 ms after the answer): a
Codex that never says so is not waited for any longer, and a resume then tells what it thinks."""


class IdleThreads:
    """Sweeps the engine's thread table: unsubscribes and forgets threads idle for ``timeout`` seconds."""

    def __init__(
        self,
        timeout: float | None,
        threads: dict[str, ThreadHandle],
        index: ConversationIndex,
        after_sweep: Callable[[], None],
        recycle: Callable[[AppServer, str | None], Awaitable[None]],
    ) -> None:
        self.timeout = timeout
        self._threads = threads
        self._index = index
        self._after_sweep = after_sweep
        self._recycle = recycle
        self._task: asyncio.Task[None] | None = None
        self._leaving: dict[str, tuple[ThreadHandle, asyncio.Task[None]]] = {}
        """Threads whose unsubscribe is under way, with the task that sends it."""

    def leaving(self, thread_id: str) -> ThreadHandle | None:
        """The handle of a thread being unloaded now: a request for the thread continues that one."""
        entry = self._leaving.get(thread_id)
        return entry[0] if entry is not None else None

    async def gone(self, thread_id: str) -> None:
        """Wait until Codex has closed the thread, if its unsubscribe is under way: a resume sent before
        is undone by the unsubscribe, or refused while the thread closes.  (Not cancelled with the
        waiter: the sweep waits for it too.)"""
        entry = self._leaving.get(thread_id)
        if entry is not None:
            await asyncio.shield(entry[1])

    def watch(self) -> None:
        """A thread was added: make sure the sweeper runs (it stops by itself when the table is empty)."""
        if self.timeout is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(self.timeout), name="claif-cod-idle-threads")

    async def _run(self, timeout: float) -> None:
        interval = max(0.05, min(timeout / 4, 30.0))
        while self._threads:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:  # the sweeper must outlive a bad sweep
                log.exception("engine.idle_sweep_failed")

    async def sweep(self) -> int:
        """Unload every thread idle for ``timeout`` seconds now; returns how many."""
        if self.timeout is None:
            return 0
        cutoff = time.time() - self.timeout
        idle = [h for h in self._threads.values() if not h.lock.locked() and h.last_used <= cutoff]
        if idle:
            # Forget first (no await yet), so no request can pick one of them up from now on.
            self._index.forget_threads({h.thread_id for h in idle})
            for handle in idle:
                del self._threads[handle.thread_id]
                handle.unloaded = True
            await asyncio.gather(*(self._let_go(h) for h in idle))
            log.debug("engine.threads_unloaded", count=len(idle), loaded=len(self._threads))
            emptied = {h.server: h.api_key for h in idle if h.server.alive}
            for handle in self._threads.values():
                emptied.pop(handle.server, None)
            await asyncio.gather(*(self._recycle(server, api_key) for server, api_key in emptied.items()))
        self._after_sweep()
        return len(idle)

    def _let_go(self, handle: ThreadHandle) -> asyncio.Task[None]:
        """Unsubscribe ``handle`` in a task that :meth:`gone` waits for.  Without the thread's lock: a
        request that took it before this sweep resumes the thread (after :meth:`gone`), and must not
        wait for the lock it holds."""
        task = asyncio.get_running_loop().create_task(unsubscribe_now(handle))
        self._leaving[handle.thread_id] = (handle, task)
        task.add_done_callback(lambda _: self._left(handle.thread_id, task))
        return task

    def _left(self, thread_id: str, task: asyncio.Task[None]) -> None:
        entry = self._leaving.get(thread_id)
        if entry is not None and entry[1] is task:
            del self._leaving[thread_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def unsubscribe(handle: ThreadHandle) -> None:
    """Unsubscribe the thread once no turn runs on it (held while unsubscribing: a turn on a stale
    reference waits, then finds the thread unloaded)."""
    async with handle.lock:
        await unsubscribe_now(handle)


async def unsubscribe_now(handle: ThreadHandle) -> None:
    """Unsubscribe the thread and wait until Codex has closed it: only then can it be resumed."""
    server, thread_id = handle.server, handle.thread_id
    if not server.alive:
        return
    closing = server.subscribe(thread_id)  # thread/closed comes although we unsubscribed
    try:
        result = await server.request(
            "thread/unsubscribe", wire.ThreadUnsubscribeParams(thread_id=thread_id), wire.ThreadUnsubscribeResult
        )
        if result.status == "unsubscribed":
            await within(_closed(closing), CLOSE_WAIT_S)
    except asyncio.TimeoutError:  # (TimeoutError itself on 3.11+, not on 3.10)
        log.warning("engine.thread_close_unconfirmed", thread_id=thread_id, waited=CLOSE_WAIT_S)
    except Exception:  # a dying process unloads it just the same
        pass
    finally:
        server.unsubscribe(thread_id)


async def _closed(messages: Inbox[ThreadMessage]) -> None:
    """Until ``thread/closed`` (or the process's end) comes through ``messages``."""
    while True:
        message = await messages.get()
        if isinstance(message, ProcessExit) or (
            isinstance(message, Notification) and message.method == "thread/closed"
        ):
            return
