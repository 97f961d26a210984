"""A stream's ``timeout`` bounds the wait for each of its events, as httpx's read timeout bounds each
read of a streamed response: a turn that keeps streaming may run longer than it; a plain request's
``timeout`` bounds the whole turn."""

from __future__ import annotations

import openai
import pytest
from chat_messages import user

from claif_cod import CodexClient

PACED = "[[long:10]] [[slow:300]] count"  # ten words, 0.3 s apart: ~3 s in all
TIMEOUT = 1.2
WORDS = " ".join(f"w{i}" for i in range(1, 11))


def test_a_chat_stream_outlives_its_timeout_while_it_streams(client: CodexClient) -> None:
    stream = client.chat.completions.create(model="o4-mini", messages=[user(PACED)], stream=True, timeout=TIMEOUT)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == WORDS


def test_a_plain_request_ends_at_its_timeout(client: CodexClient) -> None:
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="o4-mini", messages=[user(PACED)], timeout=TIMEOUT)


def test_a_responses_stream_outlives_its_timeout_while_it_streams(client: CodexClient) -> None:
    stream = client.responses.create(model="o4-mini", input=PACED, stream=True, timeout=TIMEOUT)
    events = list(stream)
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == WORDS


def test_a_stream_that_goes_quiet_ends_at_its_timeout(client: CodexClient) -> None:
    stream = client.chat.completions.create(
        model="o4-mini", messages=[user("[[stall-mid]] a b c")], stream=True, timeout=TIMEOUT
    )
    chunks = iter(stream)
    assert next(chunks).choices[0].delta.content  # the first deltas come before the silence
    with pytest.raises(openai.APITimeoutError):
        list(chunks)
    after = client.chat.completions.create(model="o4-mini", messages=[user("again")])
    assert after.choices[0].message.content == "Echo: again"
