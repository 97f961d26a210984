"""A request's body, given up once it stops coming.

aiohttp's keep-alive timeout closes a connection that sends no request (:data:`IDLE_TIMEOUT_S`), but
once a request's head has come nothing bounds its body: a client that stops half-way (a
``Content-Length`` it never fills, a chunked body without its last chunk) held its connection and its
handler for as long as it kept the connection open, and a drain waited for it to its deadline. So a
body that sends nothing for :data:`BODY_SILENCE_S` is refused with a 408, as slow as it may come
otherwise (a large body over a slow link takes what it takes).

A client that sends ``Expect: 100-continue`` waits to be asked for its body. aiohttp asks at once, before
anything is checked: a client without the token, or with a body its ``Content-Length`` says is over the
limit, would upload it only to be refused. The endpoint's routes leave the expectation to
:func:`read_body`, which runs once the request has passed the guard and asks for the body only then,
having refused one announced too large; any other expectation gets an OpenAI error body (417), not
aiohttp's text.
"""

from __future__ import annotations

import asyncio

from aiohttp import HttpVersion11, hdrs, web

from claif_codd.http.admission import IDLE_TIMEOUT_S

BODY_SILENCE_S = IDLE_TIMEOUT_S
"""The silence, in seconds, after which a body is given up: a connection's own, when it sends no request."""
_CHECKS_PER_SILENCE = 4
"""How often, within a silence, the body's progress is looked at: a silence is caught within a quarter of it."""


async def expect_later(request: web.Request) -> None:
    """The routes' ``expect_handler``: nothing yet (see :func:`read_body`)."""


async def read_body(request: web.Request) -> bytes:
    """``request.read()`` (its 413 past ``client_max_size`` included), whose body must keep coming:
    :class:`web.HTTPRequestTimeout` once no byte of it came for :data:`BODY_SILENCE_S`. A body whose
    ``Content-Length`` is over the limit is refused before it is read, or asked for."""
    silence = BODY_SILENCE_S  # read now, so that tests may replace it
    limit, length = request.client_max_size, request.content_length
    if limit and length is not None and length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=length)
    await _meet_expectation(request)
    loop = asyncio.get_running_loop()
    reading = asyncio.ensure_future(request.read())
    received, since = request.content.total_bytes, loop.time()
    try:
        while True:
            done, _ = await asyncio.wait([reading], timeout=silence / _CHECKS_PER_SILENCE)
            if done:
                return _decoded(request, reading.result())
            if request.content.total_bytes != received:
                received, since = request.content.total_bytes, loop.time()
            elif loop.time() - since >= silence:
                raise web.HTTPRequestTimeout()
    finally:
        if not reading.done():
            reading.cancel()
            await asyncio.wait([reading])
        if not reading.cancelled():  # a read that failed as its handler was cancelled (the client hung up
            reading.exception()  # mid-body) is not to be reported by asyncio as never retrieved, an error


DECODED_CODINGS = frozenset({"", "identity", "gzip", "deflate"})
"""The ``Content-Encoding`` values aiohttp decodes (``br`` and ``zstd`` it refuses as it parses the head)."""


def _decoded(request: web.Request, body: bytes) -> bytes:
    """``body``, unless it is in a ``Content-Encoding`` nobody decoded (``x-gzip``, ``compress``, codings
    stacked as ``gzip, gzip``: aiohttp passes those on as they came) and so is no JSON: then a 415,
    rather than the JSON parser's "invalid character (byte 0)". A JSON body under a coding label that
    means nothing (``Content-Encoding: utf-8``, a common slip) is taken as it is, as before."""
    coding = request.headers.get(hdrs.CONTENT_ENCODING, "").strip().lower()
    if coding not in DECODED_CODINGS and body.lstrip()[:1] not in (b"{", b"["):
        raise web.HTTPUnsupportedMediaType()
    return body


async def _meet_expectation(request: web.Request) -> None:
    """Ask for the body a client waits to be asked for (``Expect: 100-continue``), as aiohttp's own
    expect handler does; any other expectation is a 417."""
    expect = request.headers.get(hdrs.EXPECT)
    if expect is None:
        return
    if expect.strip().lower() != "100-continue":
        raise web.HTTPExpectationFailed()
    if request.version >= HttpVersion11:  # (HTTP/1.0 has no interim answers)
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer itself has not begun
