"""openai's ``Stream`` and ``AsyncStream``, reading claif_cod's own events directly.

openai reads a stream's server-sent events through httpx's byte iteration (its content decoders,
its chunker) and its own SSE parser: ~50 Python calls for each event, which for the first chunk
come right after Codex ran, when that code is cold.  The events claif_cod's transport hands over
are whole events it framed itself (``event:`` and ``data:`` lines, each event ending in a blank
line), so these subclasses split them into openai's ``ServerSentEvent`` at once and leave
everything else to openai: ``[DONE]``, error events, building each chunk or event object and
closing the response.  A response from anywhere else is read as openai reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

from openai import AsyncStream, Stream
from openai._streaming import ServerSentEvent

from claif_cod.transport.direct_daemon import SocketEvents
from claif_cod.transport.loop_daemon import LoopEvents
from claif_cod.transport.stream_events import AsyncEvents, SyncEvents

_T = TypeVar("_T")


class EventStream(Stream[_T]):
    def _iter_events(self) -> Iterator[ServerSentEvent]:
        events = self.response.stream
        if not isinstance(events, (SyncEvents, SocketEvents)):
            yield from super()._iter_events()
            return
        for framed in events:
            yield from split_events(framed)


class AsyncEventStream(AsyncStream[_T]):
    async def _iter_events(self) -> AsyncIterator[ServerSentEvent]:
        events = self.response.stream
        if not isinstance(events, (AsyncEvents, LoopEvents)):
            async for event in super()._iter_events():
                yield event
            return
        async for framed in events:
            for event in split_events(framed):
                yield event


def split_events(framed: bytes) -> list[ServerSentEvent]:
    """The events of ``framed`` as claif_cod frames them (see ``transport.backend.sse``): an optional
    ``event: name`` line, then one ``data:`` line (JSON has no raw line breaks), then a blank line."""
    events = []
    for block in framed.split(b"\n\n"):
        if not block:
            continue
        name = None
        if block.startswith(b"event: "):
            line, _, block = block.partition(b"\n")
            name = line[7:].decode()
        events.append(ServerSentEvent(event=name, data=block.removeprefix(b"data: ").decode()))
    return events
