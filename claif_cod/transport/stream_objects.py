"""A stream's request, HTTP response and openai ``Stream``, made on an event loop while Codex works.

Made after the first chunk, they cost it ~0.2 ms right after a turn.  Made while waiting for it,
they cost nothing it waits for: on the engine loop (``transport_core``) and on a caller loop's own
daemon connection (``loop_daemon``) alike; a sync caller's own connection does the same in its
thread (``direct_daemon``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple, Protocol

import httpx2

from claif_cod._log import get_logger
from claif_cod.chained_stream import ChainedStream
from claif_cod.transport.backend import SSE_HEADERS
from claif_cod.transport.early import OpenAIStream, StreamMaker

log = get_logger("claif_cod.transport")

STREAM_OBJECTS_DELAY_S = 0.002
"""How long after a stream's request went out its objects are made, unless it was answered sooner:
a reader woken by a write tends to be run on the writer's CPU, and made right after the request went
out they held up the daemon's reading of it (0.30 against 0.08 ms; see bench/README.md, "When to
make them")."""


class EventsShell(Protocol):
    """The response's byte stream, made before the events exist; :meth:`start` hands them over."""

    def start(self, events: ChainedStream[bytes]) -> object: ...


class Prebuilt(NamedTuple):
    """A stream's objects, made before its events exist."""

    events: EventsShell
    response: httpx2.Response
    stream: OpenAIStream


class StreamObjects:
    """Made :data:`STREAM_OBJECTS_DELAY_S` after the request went out, on ``loop``; a stream answered
    before that (a replayed tool call) makes them when it is answered."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stream: StreamMaker,
        events: Callable[[httpx2.Request], EventsShell],
    ) -> None:
        self._stream, self._events = stream, events
        self._made: Prebuilt | None = None
        self._failed = False
        self._timer = loop.call_later(STREAM_OBJECTS_DELAY_S, self._make)

    def _make(self) -> None:
        try:
            request = self._stream.request()
            shell = self._events(request)
            assert isinstance(shell, (httpx2.SyncByteStream, httpx2.AsyncByteStream))
            response = httpx2.Response(200, headers=SSE_HEADERS, stream=shell, request=request)
            self._made = Prebuilt(shell, response, self._stream(response))
        except Exception:
            log.exception("transport.stream_objects_failed")  # the request is taken the other way
            self._failed = True

    def take(self) -> Prebuilt | None:
        """The objects (None: making them failed)."""
        self._timer.cancel()
        if self._made is None and not self._failed:
            self._make()
        return self._made

    def drop(self) -> None:
        """The request failed: none are needed."""
        self._timer.cancel()
