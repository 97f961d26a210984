"""An ``AsyncCodexClient`` on an event loop other than asyncio's: trio, where openai's own async client
runs too (through anyio). The engine loop answers as it answers any caller; what the caller awaits
there is waited for in one of anyio's worker threads, and cancelling the caller cancels it on the
engine loop (a turn is interrupted, as under asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import anyio
import httpx2

from claif_cod.transport.loop_thread import Outcome, Pump
from claif_cod.transport.stream_events import outcome_of

T = TypeVar("T")


def on_asyncio() -> bool:
    """Whether the calling task runs on an asyncio event loop (a few dozen ns: no sniffing)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def on_engine_loop(engine: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """``coro``'s result, run on the engine loop; cancelling the caller cancels it there."""
    try:
        future = asyncio.run_coroutine_threadsafe(coro, engine)
    except RuntimeError:  # the engine loop closed meanwhile: the coroutine never runs
        coro.close()
        raise
    try:
        return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        future.cancel()
        raise


class ForeignEvents(httpx2.AsyncByteStream):
    """A stream's chunks, handed over by a :class:`Pump` into a thread-safe queue, each waited for in a
    worker thread when it is not there yet.  Made on the engine loop."""

    def __init__(self, request: httpx2.Request) -> None:
        self._request = request
        self._queue: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._pump: Pump[bytes] = Pump(self._queue.put)
        self._done = False

    def start(self, events: AsyncIterator[bytes]) -> ForeignEvents:
        """On the engine loop: the events start flowing."""
        self._pump.start(events)
        return self

    def __aiter__(self) -> ForeignEvents:
        return self  # not an async generator: trio warns of one left unfinished when a stream is closed

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            return outcome_of(await self._get(), self._request)
        except StopAsyncIteration:  # its end: the pump is done, nothing waits
            self._done = True
            raise
        except BaseException:  # a midstream failure, or cancelled while waiting
            self._stop()
            raise

    async def _get(self) -> Outcome:
        with contextlib.suppress(queue.Empty):
            return self._queue.get_nowait()
        return await anyio.to_thread.run_sync(self._queue.get, abandon_on_cancel=True)

    def _stop(self) -> None:
        """The generator on the engine loop is finished off there (the turn interrupted), and a
        worker thread still waiting for a chunk is let go."""
        self._done = True
        self._pump.cancel()
        self._queue.put((False, StopAsyncIteration()))

    async def aclose(self) -> None:
        if not self._done:
            self._stop()
            await anyio.to_thread.run_sync(functools.partial(self._pump.closed.wait, 30))
