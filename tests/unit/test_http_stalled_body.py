"""A request body that stops coming is given up: 408, the connection closed, its handler freed.

aiohttp bounds the wait for a request (its keep-alive timeout), not for a request's body: a client
that sent its head and half its body held the connection, and its handler, for as long as it kept
the connection open. The endpoint runs in-process on a host that runs no turn (the body is never
whole), with the silence cut from 30 s to a fraction of a second.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from claif_codd.config import DaemonConfig
from claif_codd.http import body
from claif_codd.http.app import HttpEndpoint
from claif_codd.http.settings import HttpSettings

TOKEN = "t0k"
BODY = b'{"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}]}'


class Conversations:
    """Creates no conversation: answers with the body it was given, as the endpoint read it."""

    async def create(self, body: bytes) -> bytes:
        return body


class Host:
    """What the endpoint asks of its daemon before a request's body is whole, and its conversations."""

    def __init__(self) -> None:
        self.config = DaemonConfig()
        self.draining = False
        self.turn_requests = 0
        self.service = self.responses = None  # never reached: no turn's body is whole
        self.conversations = Conversations()

    def touch(self) -> None:
        pass


@pytest.fixture
async def endpoint(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HttpEndpoint]:
    monkeypatch.setattr(body, "BODY_SILENCE_S", 0.5)
    served = HttpEndpoint(Host(), HttpSettings("127.0.0.1", 0, token=TOKEN))  # type: ignore[arg-type]
    await served.start()
    yield served
    await served.close()


def head(path: str, length: int, *headers: str) -> bytes:
    more = "".join(f"{header}\r\n" for header in headers)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n{more}\r\n"
    ).encode()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines if line)}
    return int(status_line.split()[1]), headers, await reader.readexactly(int(headers["content-length"]))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/conversations"])
async def test_a_body_that_stops_half_way_is_a_408_and_the_connection_closed(endpoint: HttpEndpoint, path: str) -> None:
    assert endpoint.address is not None
    reader, writer = await asyncio.open_connection(*endpoint.address)
    try:
        writer.write(head(path, len(BODY)) + BODY[:10])  # and never the rest
        status, headers, content = await answer(reader)
        assert status == 408, content
        assert headers["connection"] == "close", headers
        error = json.loads(content)["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "request_timeout"), error
        assert error["message"] == "The request's body stopped coming: nothing of it came for 0.5 s", error
        assert headers["x-request-id"].startswith("req_"), headers
        assert not endpoint.requests  # its handler is done: a drain does not wait for it
    finally:
        writer.close()


async def test_a_body_that_comes_slowly_but_keeps_coming_is_read(endpoint: HttpEndpoint) -> None:
    """Only a silence counts: this body takes three silences to come, in pieces a fifth of one apart."""
    assert endpoint.address is not None
    reader, writer = await asyncio.open_connection(*endpoint.address)
    slow = b'{"metadata": {"pace": "' + b"slow " * 28 + b'"}}'
    try:
        writer.write(head("/v1/conversations", len(slow)))
        for i in range(0, len(slow), 10):
            await asyncio.sleep(0.1)  # the client's own pace, not a synchronisation
            writer.write(slow[i : i + 10])
        status, _, content = await answer(reader)
        assert (status, content) == (200, slow)
    finally:
        writer.close()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/conversations"])
async def test_a_client_that_hangs_up_half_way_through_its_body_leaves_no_unretrieved_error(
    endpoint: HttpEndpoint, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body's read fails (connection lost) as the handler is cancelled: that failure was left in
    its task, which asyncio logged at error level, with a traceback, as 'Task exception was never
    retrieved' (one per client that hung up mid-body)."""
    assert endpoint.address is not None
    errors: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context["message"]))
    reading = asyncio.Event()
    meet_expectation = body._meet_expectation

    async def expectation_met(request: web.Request) -> None:  # the step before the body is read
        await meet_expectation(request)
        reading.set()

    monkeypatch.setattr(body, "_meet_expectation", expectation_met)
    _, writer = await asyncio.open_connection(*endpoint.address)
    writer.write(head(path, len(BODY)) + BODY[:10])
    await reading.wait()
    [handler] = endpoint.requests
    writer.close()
    await writer.wait_closed()
    await asyncio.wait([handler])  # cancelled as its client went away
    gc.collect()
    assert errors == []
