"""A body in a ``Content-Encoding`` nobody decoded is a 415 naming the coding, as ``br`` and ``zstd`` are.

aiohttp decodes ``gzip`` and ``deflate``, refuses ``br`` and ``zstd`` as it parses the head, and passes
any other coding on as it came (``x-gzip``, which HTTP takes for ``gzip``, ``compress``, or codings
stacked as ``gzip, gzip``): the client was told that its body was no JSON ("invalid character (byte
0)"), not why. The endpoint runs in-process, as in ``test_http_stalled_body.py``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator

import pytest
from test_http_stalled_body import BODY, TOKEN, Host, answer, head

from claif_codd.http.app import HttpEndpoint
from claif_codd.http.settings import HttpSettings


@pytest.fixture
async def endpoint() -> AsyncIterator[HttpEndpoint]:
    served = HttpEndpoint(Host(), HttpSettings("127.0.0.1", 0, token=TOKEN))  # type: ignore[arg-type]
    await served.start()
    yield served
    await served.close()


async def post(endpoint: HttpEndpoint, body: bytes, coding: str) -> tuple[int, dict[str, str], bytes]:
    assert endpoint.address is not None
    reader, writer = await asyncio.open_connection(*endpoint.address)
    try:
        writer.write(head("/v1/conversations", len(body), f"Content-Encoding: {coding}") + body)
        return await answer(reader)
    finally:
        writer.close()


@pytest.mark.parametrize("coding", ["x-gzip", "compress", "gzip, gzip", "deflate, br"])
async def test_a_body_in_a_coding_nobody_decoded_is_a_415_naming_it(endpoint: HttpEndpoint, coding: str) -> None:
    status, headers, content = await post(endpoint, gzip.compress(BODY), coding)
    assert status == 415, content
    assert headers["accept-encoding"] == "gzip, deflate"
    error = json.loads(content)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "unsupported_content_encoding"), error
    assert f"Content-Encoding '{coding}'" in error["message"], error


async def test_a_gzip_body_is_decoded(endpoint: HttpEndpoint) -> None:
    status, _, content = await post(endpoint, gzip.compress(BODY), "GZip")
    assert (status, content) == (200, BODY)  # the host's conversations answer with what they were given


async def test_a_json_body_under_a_meaningless_coding_label_is_taken_as_it_is(endpoint: HttpEndpoint) -> None:
    """``Content-Encoding: utf-8`` (a charset taken for a coding) on a plain JSON body was always read as it
    is, and still is."""
    status, _, content = await post(endpoint, BODY, "utf-8")
    assert (status, content) == (200, BODY)
