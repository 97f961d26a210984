"""``Expect: 100-continue``: the body is asked for only once the request may send it.

aiohttp's own expect handler answered ``100 Continue`` before anything was checked: a client without
the token, or announcing a body over the limit, was asked to upload it only to be refused after, and
any other expectation was a text/plain 417. The endpoint runs in-process, as in
``test_http_stalled_body.py``, with its limit cut to 1 KiB.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from test_http_stalled_body import TOKEN, Host, answer

from claif_codd.http.app import HttpEndpoint
from claif_codd.http.settings import HttpSettings

LIMIT = 1024
BODY = b'{"metadata": {"k": "v"}}'


@pytest.fixture
async def endpoint() -> AsyncIterator[HttpEndpoint]:
    host = Host()
    host.config.max_frame_size = LIMIT
    served = HttpEndpoint(host, HttpSettings("127.0.0.1", 0, token=TOKEN))  # type: ignore[arg-type]
    await served.start()
    yield served
    await served.close()


async def send_head(
    endpoint: HttpEndpoint, length: int, *headers: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert endpoint.address is not None
    reader, writer = await asyncio.open_connection(*endpoint.address)
    lines = ["POST /v1/conversations HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}", *headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    return reader, writer


async def test_the_body_is_asked_for_once_the_request_may_send_it(endpoint: HttpEndpoint) -> None:
    reader, writer = await send_head(endpoint, len(BODY), f"Authorization: Bearer {TOKEN}", "Expect: 100-continue")
    try:
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(BODY)
        status, _, content = await answer(reader)
        assert (status, content) == (200, BODY)  # the host's conversations answer with what they were given
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("length", "headers", "status", "code"),
    [
        pytest.param(LIMIT + 1, (f"Authorization: Bearer {TOKEN}",), 413, "request_too_large", id="over_the_limit"),
        pytest.param(len(BODY), ("Authorization: Bearer wrong",), 401, "invalid_api_key", id="without_the_token"),
    ],
)
async def test_a_body_that_would_be_refused_is_not_asked_for(
    endpoint: HttpEndpoint, length: int, headers: tuple[str, ...], status: int, code: str
) -> None:
    reader, writer = await send_head(endpoint, length, *headers, "Expect: 100-continue")
    try:
        got, _, content = await answer(reader)  # the final answer comes first: no 100 Continue before it
        assert got == status, content
        assert json.loads(content)["error"]["code"] == code, content
    finally:
        writer.close()


async def test_another_expectation_is_an_openai_error(endpoint: HttpEndpoint) -> None:
    reader, writer = await send_head(endpoint, len(BODY), f"Authorization: Bearer {TOKEN}", "Expect: 200-ok")
    try:
        status, headers, content = await answer(reader)
        assert status == 417 and headers["content-type"].startswith("application/json"), (headers, content)
        error = json.loads(content)["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "expectation_failed"), error
        assert headers["x-request-id"].startswith("req_"), headers
    finally:
        writer.close()
