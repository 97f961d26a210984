"""A stream's events read as its turn makes them, whether or not its HTTP client keeps up.

Writing each event and waiting until the client took it would let a client that stops reading hold
its turn (and a named session's thread, for every other client of the session) for as long as it
keeps its connection open, while the turn's events pile up in the daemon without bound. So the
events are read in a task of their own into a backlog, as a socket client's frames go to its
transport at once, and a client that lets more than ``max_outbound_bytes`` pile up is dropped, as on
the socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable

from claif_cod.openai_compat.errors import APIFailure, ErrorDetail


class EventPump:
    """``events`` read into a backlog of at most ``cap`` bytes, taken out with :meth:`next`; the
    events are closed in the reading task, once read or stopped. Past the cap, ``drop`` is asked to
    disconnect the client with the bytes that would wait: it does, and says so, only when the client
    is behind (its connection holds unsent bytes), not when the writer merely has not run yet during
    a burst; a write waiting for a dropped client then fails. An event larger than the cap still goes
    when nothing else waits: the cap is on backlog."""

    def __init__(self, events: AsyncIterator[bytes], cap: int, drop: Callable[[int], bool]) -> None:
        self._events = events
        self._cap = cap
        self._drop = drop
        self.dropped = False
        self._backlog: collections.deque[bytes] = collections.deque()
        self._pending = 0
        """Bytes read from the events that the client has not been given yet."""
        self._ready = asyncio.Event()
        self._ended: Exception | None = None
        self._read_all = False
        """No more events will come (the events may still be closing)."""
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self._events:
                waiting = self._pending + len(event)
                if self._pending and waiting > self._cap and self._drop(waiting):
                    self.dropped = True
                    self._backlog.clear()
                    return
                self._backlog.append(event)
                self._pending += len(event)
                self._ready.set()
        except asyncio.CancelledError:
            if self._stopping:
                raise
            self._ended = _cut_short()  # something inside the stream was cancelled: not a normal end
        except Exception as exc:  # the stream's own failure (an APIFailure), given to the writer in turn
            self._ended = exc
        finally:
            self._read_all = True
            self._ready.set()
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def next(self) -> bytes | None:
        """The next event; None after the last, or once the client is dropped. Raises what ended the
        events early, once the events before it are taken."""
        while not self._backlog:
            if self._read_all:
                if self._ended is not None:
                    raise self._ended
                return None
            self._ready.clear()
            await self._ready.wait()
        event = self._backlog.popleft()
        self._pending -= len(event)
        return event

    async def ready(self, timeout: float) -> bool:
        """Whether :meth:`next` has its answer (an event, the end) within ``timeout`` seconds; nothing is
        taken, so a caller may say something else meanwhile (an SSE comment keeping the stream alive)."""
        if not self._backlog and not self._read_all:
            self._ready.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        return bool(self._backlog) or self._read_all

    def rest(self) -> list[bytes]:
        """What is read and not yet taken (after :meth:`stop`: the events made before it)."""
        rest, self._backlog = list(self._backlog), collections.deque()
        self._pending = 0
        return rest

    async def stop(self) -> None:
        """Stop reading (the turn is given up, as when its client leaves) and wait until the events are
        closed, even when this task is cancelled meanwhile (its cancellation is raised after)."""
        self._stopping = True
        self._task.cancel()
        cancelled = False
        while not self._task.done():
            try:
                await asyncio.wait([self._task])
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError


def _cut_short() -> APIFailure:
    return APIFailure("status", 500, ErrorDetail("the stream was cut short inside claif-codd", "server_error"))
