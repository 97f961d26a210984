"""A stream read from another, which it closes when closed, read or not.

Each layer of a reply stream (Codex's turn events, openai's chunks, SSE frames, the daemon's
frames) is an async generator that closes its source in its ``finally``.  An async generator
closed before its first step skips that ``finally``, so a stream taken back unread (a request
openai failed to send, see :mod:`claif_cod.transport.early`) would leave its turn running until
the garbage collector found it.  Wrapped in :class:`ChainedStream`, closing any layer closes the
layers below it.

A stream's first item can be made ahead (:meth:`ChainedStream.prefetch`), in the task that answers
the request, and handed over without a step of the task that reads the stream (see
``transport.loop_thread.Pump``).
"""

from __future__ import annotations

import types
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T", covariant=True)
V = TypeVar("V")


class ChainedStream(AsyncIterator[T]):
    def __init__(self, items: AsyncGenerator[T, None], close_source: Callable[[], Awaitable[None]]) -> None:
        self._items = items
        self._close_source = close_source
        self._ready: list[T] = []

    def __aiter__(self) -> ChainedStream[T]:
        return self

    def __anext__(self) -> Awaitable[T]:
        if self._ready:
            return _at_once(self._ready.pop())
        return self._items.__anext__()

    async def prefetch(self) -> None:
        """Make the next item now; it is the next one read, or :meth:`take_ready` takes it."""
        if not self._ready:
            self._ready.append(await self._items.__anext__())

    def take_ready(self) -> list[T]:
        """The item :meth:`prefetch` made, if it is still there (then it is no longer)."""
        ready, self._ready = self._ready, []
        return ready

    async def aclose(self) -> None:
        """Closes the items, then the source (again, when the items' ``finally`` already did: closing
        is idempotent).  Items being read in another task (a stream closed by a task other than its
        reader's) cannot be closed under it (``RuntimeError``: "already running"): the source's
        closing ends them, and their reader with them."""
        try:
            if not (isinstance(self._items, types.AsyncGeneratorType) and self._items.ag_running):
                await self._items.aclose()
        finally:
            await self._close_source()


async def _at_once(item: V) -> V:
    return item
