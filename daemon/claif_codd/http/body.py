"""A request's body, given up once it stops coming.

aiohttp's keep-alive timeout closes a connection that sends no request (:data:`IDLE_TIMEOUT_S`), but
once a request's head has come nothing bounds its body: a client that stops half-way (a
``Content-Length`` it never fills, a chunked body without its last chunk) held its connection and its
handler for as long as it kept the connection open, and a drain waited for it to its deadline. So a
body that sends nothing for :data:`BODY_SILENCE_S` is refused with a 408, as slow as it may come
otherwise (a large body over a slow link takes what it takes).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from claif_codd.http.admission import IDLE_TIMEOUT_S

BODY_SILENCE_S = IDLE_TIMEOUT_S
"""The silence, in seconds, after which a body is given up: a connection's own, when it sends no request."""
_CHECKS_PER_SILENCE = 4
"""How often, within a silence, the body's progress is looked at: a silence is caught within a quarter of it."""


async def read_body(request: web.Request) -> bytes:
    """``request.read()`` (its 413 past ``client_max_size`` included), whose body must keep coming:
    :class:`web.HTTPRequestTimeout` once no byte of it came for :data:`BODY_SILENCE_S`."""
    silence = BODY_SILENCE_S  # read now, so that tests may replace it
    loop = asyncio.get_running_loop()
    reading = asyncio.ensure_future(request.read())
    received, since = request.content.total_bytes, loop.time()
    try:
        while True:
            done, _ = await asyncio.wait([reading], timeout=silence / _CHECKS_PER_SILENCE)
            if done:
                return reading.result()
            if request.content.total_bytes != received:
                received, since = request.content.total_bytes, loop.time()
            elif loop.time() - since >= silence:
                raise web.HTTPRequestTimeout()
    finally:
        if not reading.done():
            reading.cancel()
            await asyncio.wait([reading])
