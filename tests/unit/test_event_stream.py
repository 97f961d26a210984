"""openai's Stream reading claif_cod's framed events directly, and any other response as openai does."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from claif_cod.event_stream import AsyncEventStream, EventStream, split_data

CHUNK = (
    b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}'
)


def test_split_data_reads_every_event_of_a_frame() -> None:
    framed = b"data: " + CHUNK + b"\n\nevent: response.done\ndata: {}\n\ndata: [DONE]\n\n"
    assert split_data(framed) == [CHUNK, b"{}", b"[DONE]"]


def test_split_data_keeps_text_that_looks_like_framing_inside_json() -> None:
    data = b'{"text":"data: x\\n\\nevent: y"}'
    assert split_data(b"data: " + data + b"\n\n") == [data]


def _client() -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url="http://test.invalid/v1")


def _sse_response(content: bytes) -> httpx2.Response:
    request = httpx2.Request("POST", "http://test.invalid/v1/chat/completions")
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=content, request=request)


def test_a_response_from_elsewhere_is_read_as_openai_reads_it() -> None:
    body = b"data: " + CHUNK + b"\n\n" + b"data: [DONE]\n\n"
    stream: Any = EventStream(cast_to=ChatCompletionChunk, response=_sse_response(body), client=_client())
    chunks = list(stream)
    assert isinstance(stream, openai.Stream)
    assert [c.choices[0].delta.content for c in chunks] == ["hi"]


async def test_an_async_response_from_elsewhere_is_read_as_openai_reads_it() -> None:
    body = b"data: " + CHUNK + b"\n\n" + b"data: [DONE]\n\n"
    client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://test.invalid/v1")
    stream: Any = AsyncEventStream(cast_to=ChatCompletionChunk, response=_sse_response(body), client=client)
    assert isinstance(stream, openai.AsyncStream)
    assert [c.choices[0].delta.content async for c in stream] == ["hi"]


@pytest.mark.parametrize("error", [b'{"error":{"message":"boom"}}'])
def test_an_error_event_is_openais_error(error: bytes) -> None:
    stream: Any = EventStream(
        cast_to=ChatCompletionChunk, response=_sse_response(b"data: " + error + b"\n\n"), client=_client()
    )
    with pytest.raises(openai.APIError, match="boom"):
        list(stream)
