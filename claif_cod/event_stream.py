"""openai's ``Stream`` and ``AsyncStream``, reading claif_cod's own events directly.

openai reads a stream's server-sent events through httpx's byte iteration (its content decoders,
its chunker) and its own SSE parser, then parses each event's JSON with ``json.loads`` and checks
it for an ``error`` key before building its object: ~50 Python calls for each event, which for the
first chunk come right after Codex ran, when that code is cold.  The events claif_cod's transport
hands over are whole events it framed itself (``event:`` and ``data:`` lines, each event ending in
a blank line) from objects it encoded itself (never an ``error`` event: a failure is raised as
openai's exception by the events' iterator), so for them these subclasses take each event's data
at once, end at ``[DONE]`` and build each chunk or event from its JSON
(:func:`claif_cod.openai_objects.event_from_json`), closing the response at the end as openai
does.  A response from anywhere else is read as openai reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, TypeVar

from openai import AsyncStream, Stream

from claif_cod.openai_objects import event_from_json
from claif_cod.transport.direct_daemon import SocketEvents
from claif_cod.transport.loop_daemon import LoopEvents
from claif_cod.transport.stream_events import AsyncEvents, SyncEvents

_T = TypeVar("_T")


class EventStream(Stream[_T]):
    def __stream__(self) -> Iterator[_T]:
        events = self.response.stream
        if not isinstance(events, (SyncEvents, SocketEvents)):
            yield from super().__stream__()
            return
        cast_to: Any = self._cast_to
        try:
            for data in _data(events):
                yield event_from_json(self._client, cast_to, data, self.response)
        finally:
            self.response.close()


class AsyncEventStream(AsyncStream[_T]):
    async def __stream__(self) -> AsyncIterator[_T]:
        events = self.response.stream
        if not isinstance(events, (AsyncEvents, LoopEvents)):
            async for item in super().__stream__():
                yield item
            return
        cast_to: Any = self._cast_to
        try:
            async for data in _data_async(events):
                yield event_from_json(self._client, cast_to, data, self.response)
        finally:
            await self.response.aclose()


def _data(events: Iterable[bytes]) -> Iterator[bytes]:
    """Each event's data up to ``[DONE]``.  The events are read to their end (nothing follows it, as
    openai drains an HTTP/1.1 response there), so that closing them has nothing left to stop."""
    done = False
    for framed in events:
        for data in split_data(framed):
            done = done or data.startswith(b"[DONE]")
            if not done:
                yield data


async def _data_async(events: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    done = False
    async for framed in events:
        for data in split_data(framed):
            done = done or data.startswith(b"[DONE]")
            if not done:
                yield data


def split_data(framed: bytes) -> list[bytes]:
    """The data of each event in ``framed`` as claif_cod frames them (see ``transport.backend.sse``): an
    optional ``event: name`` line, then one ``data:`` line (JSON has no raw line breaks), then a blank line."""
    found = []
    for block in framed.split(b"\n\n"):
        if not block:
            continue
        if block.startswith(b"event: "):
            block = block.partition(b"\n")[2]
        found.append(block.removeprefix(b"data: "))
    return found
