"""An SSE stream served over HTTP, kept alive through its turn's silences.

Its status and headers go out with its first event, so that a turn that fails before it says
anything fails the request with an HTTP status, as OpenAI's API does. But a Codex turn can be silent
for minutes (a long command, before its first word or between two messages), and a proxy in front
of the endpoint cuts a connection silent that long (nginx's ``proxy_read_timeout``: 60 s). So every
``keepalive`` seconds of silence get an SSE comment, which SSE clients skip; and a first event that
late no longer waits: the stream begins without it (status 200, the headers known since the request
was read), and a failure after that is the stream's last event, as one after the first event is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import HttpVersion11, web

from claif_cod.openai_compat.errors import APIFailure
from claif_cod.transport.backend import StreamReply
from claif_cod.transport.in_process import StreamStart
from claif_codd.http.event_pump import EventPump
from claif_codd.http.responses import failure_event

KEEP_ALIVE = b": keep-alive\n\n"
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


async def serve_stream(
    request: web.Request,
    start: StreamStart,
    *,
    keepalive: float | None,
    max_outbound_bytes: int,
    drop: Callable[[int], bool],
    claim_cancellation: Callable[[], APIFailure | None],
) -> web.StreamResponse:
    """``start``'s stream, whose failures once it has begun become its last event. ``keepalive``: the
    silence, in seconds, that gets a comment (None: none); ``drop`` disconnects a client that leaves
    ``max_outbound_bytes`` unread (see :class:`EventPump`); ``claim_cancellation`` is the answer owed
    for this task's cancellation (a draining daemon's), None when the client went away."""
    response = web.StreamResponse(headers={**SSE_HEADERS, **start.headers})
    if request.version < HttpVersion11:  # no chunks: only the connection's end can end the stream, and aiohttp
        response.force_close()  # would keep it open for a client that asked for keep-alive (until its idle timeout)
    last_words = start.cut_short or failure_event  # Responses end with response.failed, chat with an error
    try:
        reply = await _begun(request, response, start, keepalive)
    except APIFailure as failure:
        if not response.prepared:
            raise  # before the stream began: an HTTP status
        return await _ended(response, last_words(failure))
    except asyncio.CancelledError:
        reason = claim_cancellation() if response.prepared else None  # (else the caller answers with a status)
        if reason is None:
            raise
        return await _ended(response, last_words(reason))
    pump = EventPump(reply.events, max_outbound_bytes, drop)
    try:
        await response.prepare(request)
        while (event := await _next(pump, response, keepalive)) is not None:
            await response.write(event)
    except ConnectionError:
        if not pump.dropped:
            raise
    except APIFailure as failure:
        await response.write(last_words(failure))
    except asyncio.CancelledError:
        reason = claim_cancellation()
        if reason is None:
            raise
        await pump.stop()
        for event in pump.rest():  # what the turn made before it was cut short, then why
            await response.write(event)
        await response.write(last_words(reason))
    finally:
        await pump.stop()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def _begun(
    request: web.Request, response: web.StreamResponse, start: StreamStart, keepalive: float | None
) -> StreamReply:
    """The stream once its first event is there; should that take ``keepalive`` seconds, the response
    begins meanwhile, with a comment for each ``keepalive`` seconds of the wait."""
    if keepalive is None:
        return await start.begin()
    heartbeat = asyncio.ensure_future(_heartbeat(request, response, keepalive))
    try:
        return await start.begin()
    finally:
        heartbeat.cancel()
        await asyncio.wait([heartbeat])  # no write of its own goes on once the stream's are made


async def _heartbeat(request: web.Request, response: web.StreamResponse, interval: float) -> None:
    with contextlib.suppress(ConnectionError):  # the client left: its request is cancelled
        while True:
            await asyncio.sleep(interval)
            await response.prepare(request)  # (once)
            await response.write(KEEP_ALIVE)


async def _next(pump: EventPump, response: web.StreamResponse, keepalive: float | None) -> bytes | None:
    """The stream's next event (None after the last), with a comment for each ``keepalive`` seconds before it."""
    while keepalive is not None and not await pump.ready(keepalive):
        await response.write(KEEP_ALIVE)
    return await pump.next()


async def _ended(response: web.StreamResponse, last_words: bytes) -> web.StreamResponse:
    await response.write(last_words)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
