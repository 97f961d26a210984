"""Items in order, for whoever reads them on the same event loop: an unbounded ``asyncio.Queue``
in fewer steps.

Every notification of a turn passes through one (a thread's messages from Codex, ~15 a turn, most
of them in one burst at its end), and so does every streamed chunk (a choice's pieces, a daemon
client's chunks, an async caller's events).  ``asyncio.Queue`` spends five or six Python calls on
each item (its size limit, its unfinished-task count and event, its putters); this keeps only what
a reader needs: the items, and the readers waiting for one.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    __slots__ = ("_items", "_readers")

    def __init__(self) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._readers: collections.deque[asyncio.Future[None]] = collections.deque()

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        if self._readers:
            self._wake_next()

    def put_after_fork(self, item: T) -> None:
        """In a forked child: ``item`` is put for a reader on a loop of the child's own.  Readers
        waiting are tasks of a loop that ran in the parent, not here: they are not woken (that would
        schedule a callback on that loop, from a thread that may not be its own), and are kept (one
        freed would be reported as a task destroyed while pending)."""
        self._items.append(item)

    def empty(self) -> bool:
        return not self._items

    def queued(self) -> tuple[T, ...]:
        """The items not read yet, oldest first (left in place)."""
        return tuple(self._items)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> T:
        while not self._items:
            reader = asyncio.get_running_loop().create_future()
            self._readers.append(reader)
            try:
                await reader
            except asyncio.CancelledError:
                if reader.done() and not reader.cancelled() and self._items:
                    self._wake_next()  # it was woken for an item it will not take: pass the wake-up on
                raise
        return self._items.popleft()

    def _wake_next(self) -> None:
        readers = self._readers
        while readers:
            reader = readers.popleft()
            if not reader.done():  # else cancelled: the next reader gets it
                reader.set_result(None)
                return
