"""A private event loop in a daemon thread, where the engine and its Codex children live.

Sync callers cannot await, and async callers' loops come and go (``asyncio.run`` per
call), while warm Codex processes must outlive both; so the engine gets a loop of its own
and callers reach it through thread-safe futures.

A script may never close its client. So the loop ends itself in order, whoever asks: its
owner's ``cleanup`` first (closing the daemon connection or the Codex children), then every
task left, then the loop. At interpreter exit every loop still running is ended that way
and waited for, before the interpreter tears down what those tasks use.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")

CLEANUP_TIMEOUT_S = 10.0
"""How long an owner's cleanup may take (the Codex kill ladder needs at most a few seconds)."""

_running: set[LoopThread] = set()
_running_lock = threading.RLock()
"""Reentrant: a finalizer may end a loop from inside a critical section of the same thread."""


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists (as in the daemon): every event of a turn passes through this loop, and
    uvloop's are about half the cost of asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopThread:
    def __init__(self, name: str = "claif-cod-engine", cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        self.loop = _new_loop()
        self._cleanup = cleanup
        self._ending = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        with _running_lock:
            _running.add(self)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            _finish_tasks(self.loop)
        finally:
            self.loop.close()
            with _running_lock:
                _running.discard(self)

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

    def end(self) -> None:
        """Run the cleanup, then stop the loop; returns at once, from any thread (a finalizer's too)."""
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self._end_soon)

    def _end_soon(self) -> None:
        if not self._ending:  # on the loop's own thread: no race
            self._ending = True
            self.loop.create_task(self._end())

    async def _end(self) -> None:
        try:
            if self._cleanup is not None:
                with contextlib.suppress(Exception, asyncio.TimeoutError):  # ending must not fail
                    await asyncio.wait_for(self._cleanup(), CLEANUP_TIMEOUT_S)
        finally:
            self.loop.stop()

    def join(self, timeout: float | None = None) -> None:
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def stop(self) -> None:
        """End the loop and wait for it."""
        self.end()
        self.join(CLEANUP_TIMEOUT_S + 5)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does before closing its loop: no task is left pending for the GC to find."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())


@atexit.register
def _end_all_at_exit() -> None:
    """Unclosed clients' loops end before the interpreter does: quietly, and with no Codex child left."""
    with _running_lock:
        threads = list(_running)
    for thread in threads:
        thread.end()
    for thread in threads:
        thread.join(CLEANUP_TIMEOUT_S + 5)


Outcome = tuple[bool, Any]
"""``(True, item)``, or ``(False, exception)`` once the iterator ended (``StopAsyncIteration``) or failed."""


class Pump(Generic[T]):
    """Drains an async iterator on the engine loop into ``deliver``, for a consumer in another thread.

    Created on the engine loop, where it starts at once (the first item is on its way before the
    consumer is ready for it); after that each item costs one hand-over instead of a round trip
    per item.  :meth:`cancel`, from any thread, stops it and closes the iterator there.
    """

    def __init__(self, iterator: AsyncIterator[T], deliver: Callable[[Outcome], None]) -> None:
        self._deliver = deliver
        self.closed = threading.Event()
        """Set once the iterator was closed on the engine loop."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._drain(iterator))

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
        with contextlib.suppress(RuntimeError):  # the loop is closed: the task ended with it
            self._loop.call_soon_threadsafe(self._task.cancel)
