"""A turn's wait for its next message: the caller's deadline and the silence probe on one timer.

A turn waits on its queue ~15 times; a timeout armed around each wait (``asyncio.timeout``) cost
~4 µs hot each, ~0.2 ms of CPU a turn in the daemon.  One watchdog timer per turn does the same
work: when the deadline passes, or the queue has stayed empty for ``silence`` seconds, it puts a
:class:`Wakeup` on the queue, and the waiter looks at the clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from claif_cod.engine.errors import TurnTimedOut
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.thread_messages import Notification, ProcessExit, ThreadMessage, Wakeup

_WAKEUP = Wakeup()


class TurnWait:
    def __init__(self, queue: Inbox[ThreadMessage], silence: float | None, on_silence: Callable[[], None]) -> None:
        self._queue = queue
        self._silence = silence
        self._on_silence = on_silence
        self._timeout: float | None = None
        self._gap: float | None = None
        self._deadline: float | None = None
        self._waiting_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def limit(self, timeout: float | None, gap: float | None = None) -> None:
        """From now, :meth:`next` raises ``TurnTimedOut`` once ``timeout`` seconds have passed (None:
        never).  With ``gap``, each message moves that point to ``gap`` seconds after it: a stream's
        timeout bounds the wait for each of its events, as httpx's read timeout bounds each read of a
        streamed response, not the whole turn."""
        self._timeout = timeout
        self._gap = gap
        self._deadline = None if timeout is None else time.monotonic() + timeout

    async def next(self) -> Notification | ProcessExit:
        """The next message; quiet for ``silence`` seconds, ``on_silence`` runs and the wait goes on."""
        queue = self._queue
        while True:
            waited = queue.empty()
            if waited:
                message = await self._wait()
            else:
                self._check_deadline(time.monotonic())
                message = queue.get_nowait()
            if not isinstance(message, Wakeup):
                if self._gap is not None:
                    self._deadline = time.monotonic() + self._gap
                return message
            self._check_deadline(time.monotonic())
            if waited:  # (a Wakeup found behind a message is stale: Codex has just spoken)
                # A slow model is fine, a hung process is not: the probe runs in the background; if
                # it condemns the process, ProcessExit arrives.
                self._on_silence()

    async def _wait(self) -> ThreadMessage:
        since = time.monotonic()
        self._check_deadline(since)
        self._waiting_since = since
        if self._timer is None:
            self._arm(since, since)
        try:
            return await self._queue.get()
        finally:
            self._waiting_since = None

    def _check_deadline(self, now: float) -> None:
        """Checked before every message, not only when a wait blocks: a turn whose messages never
        stop still ends at its deadline."""
        if self._deadline is not None and now >= self._deadline:
            if self._gap is not None:
                raise TurnTimedOut(self._gap, between_events=True)
            assert self._timeout is not None
            raise TurnTimedOut(self._timeout)

    def stop(self) -> None:
        """No more waits for now (the turn ended or was suspended): the timer goes."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self, since: float) -> float | None:
        due = None if self._silence is None else since + self._silence
        if self._deadline is not None:
            due = self._deadline if due is None else min(due, self._deadline)
        return due

    def _arm(self, since: float, now: float) -> None:
        due = self._due(since)
        if due is not None:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, due - now), self._wake)

    def _wake(self) -> None:
        """Runs on the loop: wakes a wait that is due, else waits again until one is (a timer armed
        by an earlier wait finds a later one, or none)."""
        self._timer = None
        since = self._waiting_since
        if since is None:
            return  # not waiting: the next wait arms it
        now = time.monotonic()
        due = self._due(since)
        if due is not None and now < due:
            self._arm(since, now)
        else:
            self._queue.put_nowait(_WAKEUP)
