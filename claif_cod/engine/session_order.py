"""A named session's turns start in the order their requests arrived, whichever way they came.

A session runs one turn at a time, but what a request does before its turn takes each its own
time: downloading its images, finding Codex, starting its process, resuming the session's thread.
On a fresh process a session's second message could start its turn before its first, scrambling
the conversation. So each request takes a :class:`Ticket` as it arrives (no waiting), waits for
the tickets before it just before it looks for the session's thread, and gives its ticket back once
its turn holds the thread (or once it failed): the next one cannot overtake it, yet does all its
own preparing meanwhile.
"""

from __future__ import annotations

import asyncio


class Ticket:
    """One request's place in its session's line."""

    def __init__(self, before: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        self._before = before
        self._mine = mine

    async def turn(self) -> None:
        """Wait until every request of the session that arrived before this one has started its turn
        (or given up). Cancelling the wait keeps the line as it is: see :meth:`done`."""
        if self._before is not None and not self._before.done():
            await asyncio.shield(self._before)

    def done(self) -> None:
        """Let the next request go: its turn started, or it failed (at any point; again: no effect).
        A request that gives up before its turn lets the next one go only once those before it have."""
        if self._mine.done():
            return
        if self._before is None or self._before.done():
            self._mine.set_result(None)
        else:
            self._before.add_done_callback(self._after_before)

    def _after_before(self, _: asyncio.Future[None]) -> None:
        if not self._mine.done():
            self._mine.set_result(None)


class SessionOrder:
    """The line of requests of each named session (kept only while a request is in it)."""

    def __init__(self) -> None:
        self._last: dict[str, asyncio.Future[None]] = {}

    def ticket(self, session_id: str) -> Ticket:
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = self._last.get(session_id)
        self._last[session_id] = mine
        mine.add_done_callback(lambda _: self._leave(session_id, mine))
        return Ticket(before, mine)

    def _leave(self, session_id: str, ticket: asyncio.Future[None]) -> None:
        if self._last.get(session_id) is ticket:  # nobody came after it
            del self._last[session_id]
