"""A model whose connection drops before its response ends fails the request as openai fails a
request whose server drops the connection: ``APIConnectionError``, not a server's 500.

``[[flaky]]`` drops the model's connection after two deltas; Codex does not retry in the test home,
and reports the break as ``other`` ("stream disconnected before completion: stream closed before
response.completed"). A ``response.failed`` the model sends (``[[failed]]``) stays a server error.
"""

from __future__ import annotations

import openai
import pytest
from chat_messages import user

from claif_cod import CodexClient

pytestmark = pytest.mark.codex


def test_a_dropped_model_stream_is_a_connection_error(client: CodexClient) -> None:
    once = client.with_options(max_retries=0)
    with pytest.raises(openai.APIConnectionError) as info:
        once.chat.completions.create(model="o4-mini", messages=[user("[[flaky]] chat a b c")])
    assert "stream closed before response.completed" in info.value.message
    with pytest.raises(openai.APIConnectionError):
        once.responses.create(model="o4-mini", input="[[flaky]] responses a b c")
    stream = once.chat.completions.create(model="o4-mini", messages=[user("[[flaky]] stream a b c")], stream=True)
    chunks = iter(stream)
    assert next(chunks).choices[0].delta.role == "assistant"
    with pytest.raises(openai.APIConnectionError):
        list(chunks)  # raised by the stream, after the two deltas that came
    after = client.chat.completions.create(model="o4-mini", messages=[user("after")])
    assert after.choices[0].message.content == "Echo: after"


def test_a_failed_response_from_the_model_stays_a_server_error(client: CodexClient) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.with_options(max_retries=0).chat.completions.create(model="o4-mini", messages=[user("[[failed]] go")])
    assert info.value.status_code == 500 and "scripted failure" in info.value.message


def test_an_error_event_from_the_model_fails_the_request_at_once(client: CodexClient) -> None:
    """The Responses API's mid-stream ``error`` event: Codex 0.163 ignores it (the stream then ends
    without ``response.completed``, a dropped stream: its code and message are not passed on)."""
    once = client.with_options(max_retries=0, timeout=60)
    with pytest.raises(openai.APIError) as info:
        once.chat.completions.create(model="o4-mini", messages=[user("[[sse-error:rate_limit_exceeded]] a b c")])
    assert not isinstance(info.value, openai.APITimeoutError)
    with once.responses.create(model="o4-mini", input="[[sse-error]] a b c", stream=True) as stream:
        assert [event.type for event in stream][-1] == "response.failed"
    after = client.chat.completions.create(model="o4-mini", messages=[user("after")])
    assert after.choices[0].message.content == "Echo: after"
