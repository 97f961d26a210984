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
from collections.abc import AsyncIterator, Callable


class EventPump:
    """``events`` read into a backlog of at most ``cap`` bytes (an event larger than the cap still
    goes when nothing else waits: the cap is on backlog), taken out with :meth:`next`. Past the cap,
    ``drop`` is called with the bytes that would wait (it disconnects the client: a write waiting
    for the client then fails) and reading stops."""

    def __init__(self, events: AsyncIterator[bytes], cap: int, drop: Callable[[int], None]) -> None:
        self._events = events
        self._cap = cap
        self._drop = drop
        self.dropped = False
        self._backlog: collections.deque[bytes] = collections.deque()
        self.pending = 0
        """Bytes read from the events that the client has not been given yet."""
        self._ready = asyncio.Event()
        self._ended: Exception | None = None
        self._done = False
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self._events:
                if self.pending and self.pending + len(event) > self._cap:
                    self.dropped = True
                    self._backlog.clear()
                    self._drop(self.pending + len(event))
                    return
                self._backlog.append(event)
                self.pending += len(event)
                self._ready.set()
        except Exception as exc:  # the stream's own failure (an APIFailure), given to the writer in turn
            self._ended = exc
        finally:
            self._done = True
            self._ready.set()

    async def next(self) -> bytes | None:
        """The next event; None after the last, or once the client is dropped. Raises what ended the
        events early, once the events before it are taken."""
        while not self._backlog:
            if self._done:
                if self._ended is not None:
                    raise self._ended
                return None
            self._ready.clear()
            await self._ready.wait()
        event = self._backlog.popleft()
        self.pending -= len(event)
        return event

    async def stop(self) -> None:
        """Stop reading (the turn is given up, as when its client leaves) and wait until that is done."""
        self._task.cancel()
        await asyncio.wait([self._task])  # (its cancellation is not this task's: nothing to suppress)
