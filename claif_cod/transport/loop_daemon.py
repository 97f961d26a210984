"""An async caller's ``create()`` sent to claif-codd on a connection of the caller's own event loop.

What :mod:`claif_cod.transport.direct_daemon` is for sync callers: through the engine loop an async
caller's request crosses to the engine's thread, and its reply, or each chunk of its stream, back
to the caller's loop.  Once the engine loop is connected to a daemon, a ``create()`` that would
only build openai's object from the reply is sent instead on a connection the caller's loop owns
(the engine loop's kind, ``DaemonConnection``, opened on that loop), and its reply and events are
read there, and so is the client's approval handler run (as it is for a request that goes through
the engine loop: on the loop that made it).  A failed request is handed to openai's pipeline on the
engine loop (its exceptions and retries); a cancelled one is stopped in the daemon.

A loop's first request goes through the engine loop, and its connection is opened for the second:
a script that runs each request in an ``asyncio.run`` of its own would otherwise pay a connection
and its ``hello`` per request (+0.7-0.9 ms a turn against the engine loop's, while a long-lived
loop's turns are ~0.2 ms and its first tokens ~0.6 ms sooner on its own connection:
``bench/loop_connection.py``).  A loop's connection lives as long as the loop does: ``asyncio.run``
cancels its reader as it ends, which closes it; closing the client closes every loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2

from claif_cod._log import get_logger
from claif_cod.chained_stream import ChainedStream
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.transport.backend import JsonReply
from claif_cod.transport.daemon_backend import DaemonBackend
from claif_cod.transport.daemon_client import REOPEN_AFTER_S, DaemonConnection
from claif_cod.transport.daemon_unusable import DaemonUnavailable
from claif_cod.transport.early import CHAT_PATH, Early, OpenAIStream, StreamMaker
from claif_cod.transport.stream_events import midstream_error
from claif_cod.transport.stream_objects import StreamObjects

log = get_logger("claif_cod.loop_daemon")


class LoopDaemon:
    """Each caller loop's connection to the daemon at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._backends: dict[asyncio.AbstractEventLoop, DaemonBackend] = {}
        """Not weak: a connection's tasks hold its loop.  Pruned of closed loops as a loop is added."""
        self._opening: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._reopen_at = 0.0
        """No connection is opened before this (``time.monotonic``) after one could not be."""
        self._closed = False

    async def answer(
        self, early: Early, options: RequestOptions, stream: StreamMaker | None
    ) -> bytes | OpenAIStream | APIFailure | None:
        """``early``'s reply as a JSON body, or openai's ``AsyncStream`` of its events (then
        ``early.stream`` is its response); its failure; or None when this path does not take it
        (nothing was sent)."""
        backend = await self._backend()
        if backend is None:
            return None
        send = backend.chat if early.path == CHAT_PATH else backend.responses
        objects = None if stream is None else StreamObjects(asyncio.get_running_loop(), stream, LoopEvents)
        try:
            reply = await send(early.body, options)
        except APIFailure as failure:
            if objects is not None:
                objects.drop()
            return failure
        except BaseException:  # cancelled
            if objects is not None:
                objects.drop()
            raise
        if isinstance(reply, JsonReply):
            return reply.body
        assert objects is not None  # a stream answers a request that asked for one
        built = objects.take()
        if built is None:  # making them failed (logged)
            await reply.events.aclose()  # the daemon stops it
            return None  # the engine loop takes the request again, from the start
        built.response.headers.update(reply.headers)
        built.events.start(reply.events)
        early.stream = built.response
        return built.stream

    async def _backend(self) -> DaemonBackend | None:
        loop = asyncio.get_running_loop()
        backend = self._backends.get(loop)
        if backend is not None and backend.conn.alive:
            return backend
        lock = self._opening.get(loop)
        if lock is None:  # this loop's first request: through the engine loop (see above)
            for ended in [other for other in list(self._opening) if other.is_closed()]:
                self._opening.pop(ended, None)
                self._backends.pop(ended, None)
            self._opening[loop] = asyncio.Lock()
            return None
        async with lock:
            backend = self._backends.get(loop)
            if backend is not None and backend.conn.alive:
                return backend
            if backend is not None:
                await backend.aclose()
            if self._closed or time.monotonic() < self._reopen_at:
                return None
            try:
                conn = await DaemonConnection.open(self.path)
            except DaemonUnavailable as exc:
                log.debug("loop_daemon.unavailable", reason=str(exc))
                self._reopen_at = time.monotonic() + REOPEN_AFTER_S
                return None
            if self._closed:
                await conn.close()
                return None
            backend = self._backends[loop] = DaemonBackend(conn)
            return backend

    def close(self) -> None:
        """From any thread: every loop's connection is closed on its loop (a request in flight fails)."""
        self._closed = True
        for loop, backend in list(self._backends.items()):
            with contextlib.suppress(RuntimeError):  # that loop is closed, and so is its connection
                loop.call_soon_threadsafe(backend.conn.close_now)


class LoopEvents(httpx2.AsyncByteStream):
    """A stream's framed events, read on the caller's loop (``AsyncEventStream`` splits them at
    once) once :meth:`start` ed; closed early, or dropped unclosed, the daemon stops the request."""

    def __init__(self, request: httpx2.Request) -> None:
        self._request = request
        self._events: ChainedStream[bytes] | None = None
        self._dropped: weakref.finalize[Any, Any] | None = None
        self._closed = False

    def start(self, events: ChainedStream[bytes]) -> None:
        """On the caller's loop."""
        self._events = events
        # Dropped unread, no generator of ours ever ran to close the events: the turn would run to its end.
        self._dropped = weakref.finalize(self, _close_soon, asyncio.get_running_loop(), events)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert self._events is not None  # started before openai's Stream reaches the caller
        try:
            async for framed in self._events:
                yield framed
        except APIFailure as failure:
            if self._closed:  # by another task as this one read: the daemon's "cancelled" ends it
                return
            raise midstream_error(self._request, failure) from None
        if self._dropped is not None:
            self._dropped.detach()  # ended: nothing to stop

    async def aclose(self) -> None:
        self._closed = True
        if self._events is not None:
            await self._events.aclose()


_CLOSING: set[asyncio.Task[None]] = set()
"""Streams dropped unclosed, being closed (the loop keeps only weak references to tasks)."""


def _close_soon(loop: asyncio.AbstractEventLoop, events: ChainedStream[bytes]) -> None:
    """Close ``events`` on ``loop`` (the collector may run this in any thread); nothing once it is closed."""

    def close() -> None:
        task = loop.create_task(events.aclose())
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)

    with contextlib.suppress(RuntimeError):  # the loop is closed: its connection, and the request, went with it
        loop.call_soon_threadsafe(close)
