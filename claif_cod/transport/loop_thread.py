"""A private event loop in a daemon thread, where the engine and its Codex children live.

Sync callers cannot await, and async callers' loops come and go (``asyncio.run`` per
call), while warm Codex processes must outlive both; so the engine gets a loop of its own
and callers reach it through thread-safe futures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "claif-cod-engine") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Block the calling thread until ``coro`` finishes on the engine loop."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:  # Ctrl-C or a timeout here must not leave the work running
            future.cancel()
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the engine loop from another loop; cancelling us cancels it."""
        future = self.submit(coro)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def next_item(self, iterator: AsyncIterator[T]) -> T:
        """One item of an async iterator living on the engine loop (StopAsyncIteration at the end)."""
        return self.run(_anext(iterator))

    async def next_item_async(self, iterator: AsyncIterator[T]) -> T:
        return await self.run_async(_anext(iterator))

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


Outcome = tuple[bool, Any]
"""``(True, item)``, or ``(False, exception)`` once the iterator ended (``StopAsyncIteration``) or failed."""


class Pump(Generic[T]):
    """Drains an async iterator on the engine loop into ``deliver``, for a consumer in another thread.

    One hop starts it; after that each item costs one hand-over instead of a round trip per item
    (a request to the engine loop and an answer back).  :meth:`cancel` stops it and closes the
    iterator there.
    """

    def __init__(self, loop: LoopThread, iterator: AsyncIterator[T], deliver: Callable[[Outcome], None]) -> None:
        self._deliver = deliver
        self.closed = threading.Event()
        """Set once the iterator was closed on the engine loop."""
        self._future = loop.submit(self._drain(iterator))

    async def _drain(self, iterator: AsyncIterator[T]) -> None:
        try:
            async for item in iterator:
                self._deliver((True, item))
            self._deliver((False, StopAsyncIteration()))
        except Exception as exc:  # the consumer raises it
            self._deliver((False, exc))
        finally:
            try:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                self.closed.set()

    def cancel(self) -> None:
        self._future.cancel()
