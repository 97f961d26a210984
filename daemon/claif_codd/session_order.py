"""The turns of one named session start in the order their ``session.send`` requests arrived.

A session runs one turn at a time, but what a request does before its turn may wait on the thread
(finding the Codex binary, starting its process, starting or resuming the session's thread) takes
longer for some than for others: on a daemon's first requests, a session's second message could
start its turn before the first.  Each request takes its place here as it arrives and keeps it
until its turn holds the session's thread, so the next one cannot overtake it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class SessionOrder:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}
        """Requests of each session holding or waiting for its lock: the lock is dropped at zero."""

    @contextlib.asynccontextmanager
    async def place(self, session_id: str) -> AsyncIterator[None]:
        """Wait for the requests of ``session_id`` that arrived before this one to start their turns."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        self._holders[session_id] = self._holders.get(session_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._holders[session_id] -= 1
            if not self._holders[session_id]:
                del self._holders[session_id], self._locks[session_id]
