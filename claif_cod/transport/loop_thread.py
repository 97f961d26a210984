"""A private event loop in a daemon thread, where the engine and its Codex children live.

Sync callers cannot await, and async callers' loops come and go (``asyncio.run`` per
call), while warm Codex processes must outlive both; so the engine gets a loop of its own
and callers reach it through thread-safe futures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

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
