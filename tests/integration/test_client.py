"""CodexClient through the real Codex binary and the offline model: every capability of the engine."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Literal

import openai
import pydantic
import pytest
from approval_waits import (
    handler_cancelled_when_its_request_times_out,
    sync_handler_cancelled_when_its_request_times_out,
)
from chat_messages import user
from codex_processes import codex_processes
from loop_handlers import answered_on, recording
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from claif_cod import ApprovalRequest, AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer, write_codex_home
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex


def test_sync_completion_is_an_openai_object_with_real_usage(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    response = client.chat.completions.create(model="o4-mini", messages=[user("hello world")])

    assert isinstance(response, ChatCompletion)
    assert response.choices[0].message.content == "Echo: hello world"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "o4-mini"
    # The server counts words of everything Codex sent; the reply is 3 deltas.
    [request] = codex_model_server.requests
    words = sum(len(text.split()) for _, text in request._message_items())
    usage = response.usage
    assert usage is not None
    assert usage.completion_tokens == 3
    assert usage.prompt_tokens >= words > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_model_defaults_to_the_client_model(client: CodexClient, codex_model_server: ModelServer) -> None:
    response = client.chat.completions.create(messages=[user("hi")])  # type: ignore[call-overload]
    assert response.model == "o4-mini"
    assert codex_model_server.requests[0].body["model"] == "o4-mini"


class Answer(pydantic.BaseModel):
    text: str


def test_the_client_model_applies_to_openais_parse_and_stream_helpers(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    # openai's helpers take model= as required; a CodexClient(model=...) fills it in as for create().
    parsed = client.chat.completions.parse(  # type: ignore[call-arg]
        messages=[user('[[reply:{"text": "x"}]]')], response_format=Answer
    )
    assert parsed.choices[0].message.parsed == Answer(text="x")
    with client.chat.completions.stream(messages=[user("s")]) as stream:  # type: ignore[call-arg]
        assert stream.get_final_completion().choices[0].message.content == "Echo: s"
    with client.responses.stream(input="r") as events:
        assert events.get_final_response().output_text == "Echo: r"
    assert [r.body["model"] for r in codex_model_server.requests] == ["o4-mini"] * 3


async def test_the_async_client_model_applies_to_the_helpers_too(aclient: AsyncCodexClient) -> None:
    parsed = await aclient.chat.completions.parse(  # type: ignore[call-arg]
        messages=[user('[[reply:{"text": "y"}]]')], response_format=Answer
    )
    assert parsed.choices[0].message.parsed == Answer(text="y")
    async with aclient.chat.completions.stream(messages=[user("s")]) as stream:  # type: ignore[call-arg]
        assert (await stream.get_final_completion()).choices[0].message.content == "Echo: s"
    async with aclient.responses.stream(input="r") as events:
        assert (await events.get_final_response()).output_text == "Echo: r"


def test_system_message_reaches_the_model_as_developer_instructions(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    client.chat.completions.create(
        model="o4-mini",
        messages=[{"role": "system", "content": "SYSTEM-RULE-42"}, user("question")],
    )
    [request] = codex_model_server.requests
    assert any("SYSTEM-RULE-42" in text for text in request.developer_texts())
    assert not any("SYSTEM-RULE-42" in text for text in request.user_texts())


def test_multi_turn_sends_history_as_separate_messages(client: CodexClient, codex_model_server: ModelServer) -> None:
    history = [user("first question"), {"role": "assistant", "content": "first answer"}, user("second question")]
    response = client.chat.completions.create(model="o4-mini", messages=history)

    assert response.choices[0].message.content == "[turn 2] Echo: second question"
    conversation = codex_model_server.requests[0].messages()
    assert ("user", "first question") in conversation
    assert ("assistant", "first answer") in conversation
    assert conversation[-1] == ("user", "second question")
    assert not any("first answer" in text and "second question" in text for _, text in conversation)


def test_continuing_a_conversation_reuses_the_warm_thread(client: CodexClient, codex_model_server: ModelServer) -> None:
    messages = [{"role": "system", "content": "be brief"}, user("one")]
    first = client.chat.completions.create(model="o4-mini", messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content}, user("two")]
    second = client.chat.completions.create(model="o4-mini", messages=messages)

    assert second.choices[0].message.content == "[turn 2] Echo: two"
    one, two = codex_model_server.requests
    assert one.body["prompt_cache_key"] == two.body["prompt_cache_key"]  # the same Codex thread
    assert two.messages()[-3:] == [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]
    assert two.user_texts().count("one") == 1  # history was not injected a second time


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_of_two_messages_comes_back_whole_and_continues_warm(
    client: CodexClient, codex_model_server: ModelServer, stream: bool
) -> None:
    messages: list[Any] = [user("one [[preamble:Looking into it.]]")]
    if stream:
        chunks = client.chat.completions.create(model="o4-mini", messages=messages, stream=True)
        reply = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = client.chat.completions.create(model="o4-mini", messages=messages).choices[0].message.content or ""
    assert "Looking into it." in reply and "Echo: one" in reply
    messages += [{"role": "assistant", "content": reply}, user("two")]
    second = client.chat.completions.create(model="o4-mini", messages=messages)
    assert second.choices[0].message.content == "[turn 2] Echo: two"
    one, two = codex_model_server.requests
    assert one.body["prompt_cache_key"] == two.body["prompt_cache_key"]


def test_edited_history_starts_a_new_thread(client: CodexClient, codex_model_server: ModelServer) -> None:
    first = client.chat.completions.create(model="o4-mini", messages=[user("one")])
    assert first.choices[0].message.content == "Echo: one"
    client.chat.completions.create(
        model="o4-mini", messages=[user("one"), {"role": "assistant", "content": "something else"}, user("two")]
    )
    one, two = codex_model_server.requests
    assert one.body["prompt_cache_key"] != two.body["prompt_cache_key"]
    assert ("assistant", "something else") in two.messages()


def test_a_failure_before_the_first_chunk_is_the_status_of_a_stream(client: CodexClient) -> None:
    # As with OpenAI's API: a rate limit or a bad request fails create(), not the iteration.
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(  # CodexClient does not retry unless asked
            model="o4-mini", messages=[user("[[status:429:rate_limit_exceeded]] hi")], stream=True
        )


def test_stream_relays_deltas_before_the_turn_completes(client: CodexClient) -> None:
    # The model sends two deltas and then hangs: only real streaming can deliver them.
    stream = client.chat.completions.create(
        model="o4-mini", messages=[user("[[stall-mid]] one two three")], stream=True
    )
    received = ""
    for chunk in stream:
        assert isinstance(chunk, ChatCompletionChunk)
        received += chunk.choices[0].delta.content or ""
        if len(received.split()) >= 2:
            break
    stream.close()
    assert received.startswith("Echo:")
    # The abandoned turn was interrupted; the client still works.
    assert client.chat.completions.create(model="o4-mini", messages=[user("after")]).choices[0].message.content == (
        "Echo: after"
    )


def test_stream_chunks_and_usage(client: CodexClient) -> None:
    stream = client.chat.completions.create(
        model="o4-mini", messages=[user("a b c")], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: a b c"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("include_usage", [False, True])
def test_chunks_carry_usage_as_openais_do(client: CodexClient, include_usage: bool) -> None:
    """OpenAI sends ``usage`` only with ``include_usage``: ``null`` on each chunk but the last."""
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    with client.chat.completions.with_streaming_response.create(
        model="o4-mini", messages=[user("a b")], stream=True, **extra
    ) as response:
        chunks = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    if include_usage:
        assert [chunk["usage"] is None for chunk in chunks] == [True] * (len(chunks) - 1) + [False]
    else:
        assert chunks and all("usage" not in chunk for chunk in chunks)


def test_n_runs_independent_threads_each_with_its_own_continuation(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    response = client.chat.completions.create(model="o4-mini", messages=[user("pick")], n=3)
    assert [c.index for c in response.choices] == [0, 1, 2]
    threads = [r.body["prompt_cache_key"] for r in codex_model_server.requests]
    assert len(set(threads)) == 3
    assert response.usage is not None and response.usage.completion_tokens == 3 * 2

    chosen = response.choices[1].message.content
    client.chat.completions.create(
        model="o4-mini", messages=[user("pick"), {"role": "assistant", "content": chosen}, user("more")]
    )
    assert codex_model_server.requests[-1].body["prompt_cache_key"] in threads


def test_n_streams_every_choice(client: CodexClient) -> None:
    stream = client.chat.completions.create(model="o4-mini", messages=[user("x y")], n=2, stream=True)
    texts = {0: "", 1: ""}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {0: "Echo: x y", 1: "Echo: x y"}


def test_stop_sequence_cuts_the_text(client: CodexClient) -> None:
    response = client.chat.completions.create(
        model="o4-mini", messages=[user("[[reply:alpha beta STOP gamma delta]]")], stop=["STOP"]
    )
    assert response.choices[0].message.content == "alpha beta "
    assert response.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model="o4-mini", messages=[user("[[reply:alpha beta STOP gamma]]")], stop="STOP", stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "alpha beta "


def test_a_stream_that_says_nothing_sends_its_role_then_its_finish(client: CodexClient) -> None:
    """As OpenAI streams an empty answer: a role chunk (empty content), then the finish chunk with an
    empty delta. Both were one chunk holding the role and the finish reason."""
    stream = client.chat.completions.create(
        model="o4-mini", messages=[user("[[reply:STOP at once]]")], stop="STOP", stream=True
    )
    chunks = [(c.choices[0].delta.model_dump(exclude_none=True), c.choices[0].finish_reason) for c in stream]
    assert chunks == [({"role": "assistant", "content": ""}, None), ({}, "stop")]


def test_incomplete_response_finishes_with_length(client: CodexClient) -> None:
    response = client.chat.completions.create(model="o4-mini", messages=[user("[[incomplete]] some words")])
    assert response.choices[0].finish_reason == "length"
    assert response.choices[0].message.content == "Echo: some words"


def test_a_message_without_calls_has_no_tool_calls_key_as_openais(client: CodexClient) -> None:
    """A hand-written client's ``message.get("tool_calls", [])`` must not meet a null."""
    raw = client.chat.completions.with_raw_response.create(model="o4-mini", messages=[user("hi")])
    message = json.loads(raw.http_response.content)["choices"][0]["message"]
    assert message == {"content": "Echo: hi", "role": "assistant", "refusal": None, "annotations": []}


def test_response_format_json_schema_becomes_codex_output_schema(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    response = client.chat.completions.create(
        model="o4-mini",
        messages=[user('[[reply:{"a": 1}]]')],
        response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}},
        reasoning_effort="high",
    )
    assert json.loads(response.choices[0].message.content or "") == {"a": 1}
    body = codex_model_server.requests[0].body
    assert body["text"]["format"]["type"] == "json_schema"
    assert body["text"]["format"]["schema"]["properties"] == schema["properties"]
    assert body["reasoning"]["effort"] == "high"


@pytest.mark.parametrize("stream", [False, True])
def test_a_json_schema_answer_leaves_the_models_commentary_out_and_continues_warm(
    client: CodexClient, codex_model_server: ModelServer, stream: bool
) -> None:
    """Codex holds every model request of the turn to the schema, narration too: joined, two JSON
    documents would not parse; the commentary is not the answer (openai's .parse() must take it)."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}}
    messages: list[Any] = [user('[[preamble:{"a": 0}]] [[reply:{"a": 1}]]')]
    if stream:
        chunks = client.chat.completions.create(model="o4-mini", messages=messages, response_format=fmt, stream=True)
        reply = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = (
            client.chat.completions.create(model="o4-mini", messages=messages, response_format=fmt)
            .choices[0]
            .message.content
            or ""
        )
    assert json.loads(reply) == {"a": 1}
    messages += [{"role": "assistant", "content": reply}, user("two")]
    client.chat.completions.create(model="o4-mini", messages=messages, response_format=fmt)
    one, two = codex_model_server.requests
    assert one.body["prompt_cache_key"] == two.body["prompt_cache_key"]


def test_a_json_schema_answer_that_is_all_commentary_is_the_answer(client: CodexClient) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "thing", "schema": {"type": "object"}}}
    reply = client.chat.completions.create(
        model="o4-mini", messages=[user('[[preamble:{"a": 0}]] [[reply:]]')], response_format=fmt
    )
    assert reply.choices[0].message.content == '{"a": 0}'


def test_unsupported_parameters_are_reported_and_strict_rejects_them(codex_home: Path, workdir: Path) -> None:
    with CodexClient(daemon="off") as lenient:
        raw = lenient.chat.completions.with_raw_response.create(
            model="o4-mini", messages=[user("hi")], temperature=0.2, max_tokens=5
        )
        assert raw.headers["x-claif-cod-ignored-params"] == "max_tokens,temperature"
        assert raw.parse().choices[0].message.content == "Echo: hi"
    with CodexClient(daemon="off", strict=True) as strict:
        with pytest.raises(openai.BadRequestError) as info:
            strict.chat.completions.create(model="o4-mini", messages=[user("hi")], temperature=0.2)
        assert info.value.status_code == 400
        assert "temperature" in str(info.value)


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"temperature": "hot"}, "temperature", "invalid_type"),
        ({"max_tokens": "100"}, "max_tokens", "invalid_type"),
        ({"stream_options": {"include_usage": True}}, "stream_options", None),
        ({"logit_bias": {"50256": 101}}, "logit_bias.50256", "integer_above_max_value"),
        ({"tool_choice": "none"}, "tool_choice", None),
        ({"tools": []}, "tools", "empty_array"),
    ],
)
def test_what_openai_refuses_is_refused_before_codex_runs(
    client: CodexClient, codex_model_server: ModelServer, params: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="o4-mini", messages=[user("hi")], **params)
    assert (info.value.param, info.value.code) == (param, code)
    assert codex_model_server.requests == []
    answer = client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert answer.choices[0].message.content == "Echo: hi"


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"include": ["usage"]}, "include[0]", "invalid_value"),
        ({"max_tool_calls": 0}, "max_tool_calls", "integer_below_min_value"),
        ({"tool_choice": "required"}, "tool_choice", None),
    ],
)
def test_what_openais_responses_refuses_is_refused_before_codex_runs(
    client: CodexClient, codex_model_server: ModelServer, params: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="o4-mini", input="hi", **params)
    assert (info.value.param, info.value.code) == (param, code)
    assert codex_model_server.requests == []


@pytest.mark.parametrize(
    ("marker", "error", "code"),
    [
        ("[[status:401]]", openai.AuthenticationError, None),
        ("[[status:429]]", openai.RateLimitError, None),
        ("[[status:429:insufficient_quota]]", openai.RateLimitError, "insufficient_quota"),
        ("[[status:400:context_length_exceeded]]", openai.BadRequestError, "context_length_exceeded"),
        ("[[status:500]]", openai.InternalServerError, None),
        ("[[failed]]", openai.InternalServerError, None),
    ],
)
def test_upstream_failures_raise_openais_own_classes(
    client: CodexClient, marker: str, error: type[openai.APIStatusError], code: str | None
) -> None:
    with pytest.raises(error) as info:
        client.chat.completions.create(model="o4-mini", messages=[user(f"{marker} hi")])
    if code is not None:
        assert info.value.code == code
    # The same client and its warm process keep working.
    assert (
        client.chat.completions.create(model="o4-mini", messages=[user("ok")]).choices[0].message.content == "Echo: ok"
    )


@pytest.mark.parametrize("stream", [False, True])
def test_a_full_context_window_is_worded_as_chat_completions_word_it(client: CodexClient, stream: bool) -> None:
    """Codex passes on the Responses API's words; litellm tells a full context window (and falls back
    to a larger model) by chat's "This model's maximum context length is"."""
    with pytest.raises(openai.BadRequestError) as info:  # a stream's too: it fails before it begins
        client.chat.completions.create(
            model="o4-mini", messages=[user("[[status:400:context_length_exceeded]] hi")], stream=stream
        )
    assert info.value.code == "context_length_exceeded"
    assert info.value.body["message"].startswith("This model's maximum context length is exceeded by the messages: ")
    assert "context window" in info.value.message  # the provider's own words follow


def test_missing_api_key_variable_is_an_authentication_error(
    tmp_path: Path, codex_model_server: ModelServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = write_codex_home(tmp_path / "home", codex_model_server.url, env_key="CLAIF_COD_TEST_UNSET_KEY")
    monkeypatch.setenv("CODEX_HOME", str(home))
    monkeypatch.delenv("CLAIF_COD_TEST_UNSET_KEY", raising=False)
    with CodexClient(daemon="off") as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])


def test_api_key_reaches_codex_as_its_bearer_token(
    tmp_path: Path, codex_model_server: ModelServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = write_codex_home(tmp_path / "home", codex_model_server.url, env_key="CODEX_API_KEY")
    monkeypatch.setenv("CODEX_HOME", str(home))
    with CodexClient(daemon="off", api_key="sk-test-123") as client:
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert codex_model_server.requests[0].headers.get("authorization") == "Bearer sk-test-123"


def test_timeout_interrupts_the_turn_and_the_conversation_stays_usable(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    messages = [user("start")]
    first = client.chat.completions.create(model="o4-mini", messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content}, user("[[stall]] hang")]
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="o4-mini", messages=messages, timeout=1.5)
    messages[-1] = user("again")
    after = client.chat.completions.create(model="o4-mini", messages=messages)
    assert after.choices[0].message.content == "[turn 2] Echo: again"


async def test_async_completion_and_stream(aclient: AsyncCodexClient) -> None:
    response = await aclient.chat.completions.create(model="o4-mini", messages=[user("async")])
    assert response.choices[0].message.content == "Echo: async"
    stream = await aclient.chat.completions.create(model="o4-mini", messages=[user("s t")], stream=True)
    text = ""
    async for chunk in stream:
        text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert text == "Echo: s t"


async def test_four_concurrent_async_requests_overlap(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    # Each model response stalls until all four requests have reached the model: they can only
    # all finish if they are in flight at the same time.
    langs = ["Python", "JavaScript", "Go", "Rust"]
    responses = await asyncio.gather(
        *(
            aclient.chat.completions.create(model="o4-mini", messages=[user(f"[[barrier:4]] {lang} hello world")])
            for lang in langs
        )
    )
    assert [r.choices[0].message.content for r in responses] == [f"Echo: {lang} hello world" for lang in langs]
    assert len({r.body["prompt_cache_key"] for r in codex_model_server.requests}) == 4


def test_models_list_keeps_to_its_timeout(codex_home: Path, workdir: Path) -> None:
    with CodexClient(daemon="off") as client:
        with pytest.raises(openai.APITimeoutError):
            client.models.list(timeout=0.001)  # the first list starts Codex, which takes far longer
        assert [m.id for m in client.models.list()] == ["o4-mini", "o4", "gpt-test-large"]
    assert codex_processes(codex_home) == {}  # nothing left of the start the timeout cut short


async def test_a_burst_beyond_codexs_queue_is_answered_in_full(aclient: AsyncCodexClient) -> None:
    # Codex refuses requests beyond its 128-message queue, and drops those refusals when its queue
    # of answers is full too (before: 8 and 167 refusals, or 40-208 lists never answered, of 600).
    once = aclient.with_options(max_retries=0)
    lists = await asyncio.gather(*(once.models.list() for _ in range(600)), return_exceptions=True)
    assert [repr(e) for e in lists if isinstance(e, BaseException)][:3] == []
    assert all(len(page.data) == 3 for page in lists if not isinstance(page, BaseException))


def test_models_list_comes_from_codex(client: CodexClient) -> None:
    models = client.models.list()
    ids = [m.id for m in models]
    assert ids == ["o4-mini", "o4", "gpt-test-large"]
    assert all(m.object == "model" for m in models)
    assert client.models.retrieve("o4").id == "o4"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_missing_binary_is_a_connection_error_naming_every_place(codex_home: Path, workdir: Path) -> None:
    with (
        CodexClient(daemon="off", codex_path="/nonexistent/codex") as client,
        pytest.raises(openai.APIConnectionError) as info,
    ):
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert "/nonexistent/codex" in str(info.value)
    assert "Searched" in str(info.value)


def test_missing_binary_everywhere_lists_path_and_bundle(
    codex_home: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import claif_cod.engine.discovery as discovery

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CLAIF_COD_CODEX_PATH", raising=False)  # set when the run chose a Codex
    monkeypatch.setattr(discovery, "_bundled_path", lambda: None)
    with CodexClient(daemon="off") as client, pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    message = str(info.value)
    assert "`codex` on PATH" in message and "bundled openai-codex-cli-bin" in message


def test_codex_retry_restarts_partial_text(
    tmp_path: Path,
    codex_model_server: ModelServer,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = write_codex_home(tmp_path / "home", codex_model_server.url, stream_max_retries=2)
    monkeypatch.setenv("CODEX_HOME", str(home))
    with caplog.at_level(logging.WARNING, logger="claif_cod.engine"), CodexClient(daemon="off") as client:
        response = client.chat.completions.create(model="o4-mini", messages=[user("[[flaky]] one two three four")])
        assert response.choices[0].message.content == "Echo: one two three four"
        stream = client.chat.completions.create(
            model="o4-mini", messages=[user("[[flaky]] five six seven eight")], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "Echo: five six seven eight"
    assert len(codex_model_server.requests) == 4  # each turn was attempted twice
    # Codex's own words on each retry are logged (the only sign of why a turn goes quiet meanwhile)
    retries = [r for r in caplog.records if r.getMessage() == "turn.codex_retrying"]
    assert len(retries) == 2 and all(getattr(r, "said", "").startswith("Reconnecting") for r in retries)


@pytest.mark.parametrize("decision", ["decline", "accept"])
def test_approval_requests_reach_the_clients_handler(
    codex_home: Path, workdir: Path, decision: Literal["accept", "decline"]
) -> None:
    seen: list[ApprovalRequest] = []
    handler = recording(seen, decision)

    # workspace-write: an accepted command may write in the working directory, whatever sandbox Codex uses.
    with CodexClient(
        daemon="off", approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as client:
        response = client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch made.txt]] go")])
    [request] = seen
    assert request.kind == "command"
    assert request.item_id.startswith("call_")  # the model's call id, which Codex uses for the item
    assert "touch made.txt" in (request.command or "")
    assert request.cwd == str(workdir)
    assert (workdir / "made.txt").exists() == (decision == "accept")
    assert (response.choices[0].message.content or "").startswith("Tool said:")


@pytest.mark.parametrize("way", ["plain", "stream", "raw"])
async def test_an_async_clients_approval_handler_runs_on_the_requests_loop(
    codex_home: Path, workdir: Path, way: str
) -> None:
    """It may await what its own loop resolves (an editor waiting for its user's answer)."""
    loops: list[bool] = []
    handler = answered_on(asyncio.get_running_loop(), loops)

    messages = [user(f"[[tool:touch {way}.txt]] go")]
    async with AsyncCodexClient(
        daemon="off", approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as client:
        if way == "stream":
            stream = await client.chat.completions.create(model="o4-mini", messages=messages, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        elif way == "raw":
            raw = await client.chat.completions.with_raw_response.create(model="o4-mini", messages=messages)
            text = raw.parse().choices[0].message.content or ""
        else:
            text = (await client.chat.completions.create(model="o4-mini", messages=messages)).choices[0].message.content
    assert loops == [True]
    assert (workdir / f"{way}.txt").exists()
    assert (text or "").startswith("Tool said:")


async def test_a_request_that_ends_first_cancels_its_approval_handler(codex_home: Path, workdir: Path) -> None:
    await handler_cancelled_when_its_request_times_out("off", workdir)


def test_a_sync_clients_request_that_ends_first_cancels_its_approval_handler(codex_home: Path, workdir: Path) -> None:
    sync_handler_cancelled_when_its_request_times_out("off", workdir)


def test_without_a_handler_approvals_are_declined(codex_home: Path, workdir: Path) -> None:
    with CodexClient(daemon="off", approval_policy="untrusted") as client:
        response = client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch no.txt]] go")])
    assert "rejected" in (response.choices[0].message.content or "")
    assert not (workdir / "no.txt").exists()


@pytest.mark.parametrize(("action", "count"), [("default", 1), ("always", 2), ("error", 0)])
def test_retired_approval_value_maps_to_the_nearest_with_a_warning(
    codex_home: Path, workdir: Path, action: Literal["default", "always", "error"], count: int
) -> None:
    # A UserWarning for each request, which Python's default filter shows once; made an error by the
    # caller's filters, it does not fail the request (as through the daemon, where it runs already).
    with (
        CodexClient(daemon="off", approval_policy="on-failure", max_retries=0) as client,
        warnings.catch_warnings(record=True) as warned,
    ):
        warnings.simplefilter(action)
        for text in ("one", "two"):
            reply = client.chat.completions.create(model="o4-mini", messages=[user(text)])
            assert reply.choices[0].message.content == f"Echo: {text}"
    messages = [str(w.message) for w in warned if "on-failure" in str(w.message)]
    assert len(messages) == count
    assert all("using 'on-request' instead" in message for message in messages)


def test_close_leaves_no_codex_process_behind(codex_home: Path, workdir: Path) -> None:
    client = CodexClient(daemon="off")
    client.chat.completions.create(model="o4-mini", messages=[user("hi")], n=2)
    assert client.backend is not None
    backend = client.backend.local
    assert isinstance(backend, InProcessBackend)
    pids = [server.pid for _, server, *_ in backend.engine.processes()]
    assert pids
    client.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # httpx refuses a closed client; openai < 3.4 wraps that in APIConnectionError, later ones do not.
    with pytest.raises((RuntimeError, openai.APIConnectionError)) as info:
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    refusal = info.value.__cause__ if isinstance(info.value, openai.APIConnectionError) else info.value
    assert isinstance(refusal, RuntimeError)
    assert "closed" in str(refusal)


CLOSED_WHILE_SENT = "Connection error: the client was closed while the request ran."


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_running_when_its_client_is_closed_says_the_client_was_closed(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, stream: bool
) -> None:
    """Its dispatch ended with the engine loop, and settling it there raised 'Event loop is closed'
    over what happened. openai's own request, sent and cut short by its client's close, is an
    APIConnectionError (its connection closed): not the refusal of a request to a closed client."""
    client = CodexClient(daemon="off", model="o4-mini")
    failures: list[BaseException] = []

    def ask() -> None:
        try:
            reply = client.chat.completions.create(messages=[user("[[stall]] closing")], stream=stream)
            if stream:
                list(reply)
        except BaseException as exc:  # what the caller sees, whatever it is
            failures.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    codex_model_server.wait_for_requests(1, timeout=20)
    client.close()
    asking.join(30)
    [failure] = failures
    assert isinstance(failure, openai.APIConnectionError) and str(failure) == CLOSED_WHILE_SENT, repr(failure)


async def test_an_async_request_running_when_its_client_is_closed_says_the_client_was_closed(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    client = AsyncCodexClient(daemon="off", model="o4-mini")
    asking = asyncio.create_task(client.chat.completions.create(messages=[user("[[stall]] closing")]))
    await asyncio.to_thread(codex_model_server.wait_for_requests, 1, 20)
    await client.close()
    with pytest.raises(openai.APIConnectionError) as failure:
        await asking
    assert str(failure.value) == CLOSED_WHILE_SENT


async def test_a_first_request_whose_client_is_closed_as_codex_starts_says_the_client_was_closed(
    codex_home: Path, workdir: Path
) -> None:
    """The engine loop's ending cancelled the request's task as it started Codex: the caller got
    "RuntimeError: Event loop is closed"."""
    client = AsyncCodexClient(daemon="off", model="o4-mini")
    asking = asyncio.create_task(client.chat.completions.create(messages=[user("first")]))
    await asyncio.sleep(0)  # (one step: the request is on the engine loop, which starts Codex)
    await client.close()
    with pytest.raises(openai.APIConnectionError) as failure:
        await asking
    assert str(failure.value) == CLOSED_WHILE_SENT


@pytest.mark.parametrize(("option", "value"), [("sandbox_mode", "yolo"), ("approval_policy", "sometimes")])
def test_unknown_sandbox_or_approval_value_is_a_bad_request(
    codex_home: Path, workdir: Path, option: str, value: str
) -> None:
    with CodexClient(daemon="off", **{option: value}) as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert f"{option}={value!r} is unknown to codex" in str(info.value)
    assert info.value.param == option  # type: ignore[attr-defined]


def test_client_session_with_n_above_one_is_a_bad_request(codex_home: Path, workdir: Path) -> None:
    with CodexClient(daemon="off", session_id="one-choice") as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="o4-mini", messages=[user("hi")], n=2)
    assert info.value.param == "n"  # type: ignore[attr-defined]


def test_relative_codex_home_is_resolved_when_the_client_is_created(
    codex_home: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(codex_home.parent)
    client = CodexClient(daemon="off", codex_home=codex_home.name, working_dir=str(workdir))
    monkeypatch.chdir(workdir)  # Codex itself runs in the working directory
    with client:
        reply = client.chat.completions.create(model="o4-mini", messages=[user("home")])
    assert reply.choices[0].message.content == "Echo: home"


@pytest.mark.parametrize("stream", [False, True])
def test_retries_leave_a_turn_that_ran_a_command_alone(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, stream: bool
) -> None:
    """With max_retries, openai retries 429s and 5xx; a Codex turn that ran a command before it
    failed is not sent again (the command would run again)."""
    with CodexClient(daemon="off", max_retries=2) as client, pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(
            model="o4-mini", messages=[user("[[tool:echo ran]] [[failed-after-tool]] go")], stream=stream
        )
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert len(codex_model_server.requests) == 2  # the command's call and its follow-up, once
