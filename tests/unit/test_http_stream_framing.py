"""A stream's end must be one its client can see, whatever HTTP version it speaks.

An HTTP/1.1 stream is chunked, and ends with its last chunk. HTTP/1.0 has no chunks: a body without a
``Content-Length`` ends only with the connection. aiohttp sends such a stream without a ``Connection:
keep-alive`` header (so the client takes the connection's end for the body's end) but, to a client that
asked for keep-alive (ApacheBench ``-k``, a proxy), keeps the connection open afterwards: the client saw
its stream end only when the idle connection was closed, 30 s later (a Responses stream has no
``[DONE]`` to stop at).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import NamedTuple

import pytest
from aiohttp import web

from claif_cod.chained_stream import ChainedStream
from claif_cod.transport.backend import StreamReply, sse
from claif_cod.transport.in_process import StreamStart
from claif_codd.http.sse_stream import serve_stream

EVENTS = [sse(b'{"n": 1}'), sse(b'{"n": 2}')]


async def _events() -> AsyncGenerator[bytes, None]:
    for event in EVENTS:
        yield event


async def _nothing() -> None:
    pass


SERVED: web.AppKey[asyncio.Queue[web.StreamResponse]] = web.AppKey("served", asyncio.Queue)


async def _stream(request: web.Request) -> web.StreamResponse:
    async def begin() -> StreamReply:
        return StreamReply(ChainedStream(_events(), _nothing))

    response = await serve_stream(
        request,
        StreamStart({}, begin),
        keepalive=None,
        max_outbound_bytes=1 << 20,
        drop=lambda _pending: False,
        claim_cancellation=lambda: None,
    )
    request.app[SERVED].put_nowait(response)
    return response


class Server(NamedTuple):
    address: tuple[str, int]
    served: asyncio.Queue[web.StreamResponse]
    """Each stream's response, once its handler is done with it."""


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app = web.Application()
    app[SERVED] = asyncio.Queue()
    app.router.add_post("/stream", _stream)
    runner = web.AppRunner(app, keepalive_timeout=60)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield Server((host, port), app[SERVED])
    await runner.cleanup()


@pytest.mark.parametrize("connection", ["keep-alive", None])
async def test_an_http_1_0_stream_ends_with_its_connection(server: Server, connection: str | None) -> None:
    reader, writer = await asyncio.open_connection(*server.address)
    asked = f"Connection: {connection}\r\n" if connection else ""
    writer.write(f"POST /stream HTTP/1.0\r\nHost: 127.0.0.1\r\n{asked}Content-Length: 0\r\n\r\n".encode())
    try:
        served = await server.served.get()
        assert not served.keep_alive  # aiohttp closes the connection once the handler is done
        answer = await reader.read()  # all of it: up to the connection's end
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    assert b"keep-alive" not in head.lower(), head  # what the client is told: the body ends with the connection
    assert body == b"".join(EVENTS)


async def test_an_http_1_1_stream_is_chunked_and_keeps_its_connection(server: Server) -> None:
    reader, writer = await asyncio.open_connection(*server.address)
    writer.write(b"POST /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower(), head
        assert await reader.readuntil(b"0\r\n\r\n")  # its last chunk
        writer.write(b"POST /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")  # the same connection
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
