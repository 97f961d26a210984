"""Caller-defined tools through CodexClient, the real Codex binary and the offline model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest
from chat_messages import user
from image_details import PNG_URL
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.engine.config import CodexConfig
from claif_cod.engine.engine import Engine
from claif_cod.engine.tools import ToolResult
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.service import ChatService
from claif_cod.testing import ModelServer, RecordedRequest, write_codex_home
from claif_cod.testing.recorded import item_words
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
TOOLS: list[Any] = [WEATHER, TIME]
PARALLEL = 'Weather and time? [[call:get_weather {"city": "Paris"}]] [[call:get_time {}]]'


def answered(messages: list[Any], message: Any, outputs: dict[str, str]) -> list[Any]:
    """The history a caller sends back: its messages, the assistant's tool calls, one tool message per call."""
    results = [{"role": "tool", "tool_call_id": c.id, "content": outputs[c.function.name]} for c in message.tool_calls]
    return [*messages, message.model_dump(exclude_none=True), *results]


def input_words(request: RecordedRequest) -> int:
    return sum(len(item_words(item)) for item in request.body["input"])


def engine_of(client: CodexClient | AsyncCodexClient) -> Engine:
    assert client.backend is not None
    backend = client.backend.local
    assert isinstance(backend, InProcessBackend)
    return backend.engine


def test_parallel_calls_come_back_together_and_the_same_turn_continues(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    messages: list[Any] = [user(PARALLEL)]
    first = client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS)

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    [request] = codex_model_server.requests
    # Usage is that of the one model request that made the calls (the model counts words).
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (input_words(request), 2)
    assert {"get_weather", "get_time"} <= set(request.tool_names())
    assert engine_of(client).turns_in_flight == 1  # suspended, not ended

    second = client.chat.completions.create(
        model="o4-mini",
        messages=answered(messages, choice.message, {"get_weather": "sunny", "get_time": "noon"}),
        tools=TOOLS,
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Tool get_weather returned: sunny\nTool get_time returned: noon"
    follow_up = codex_model_server.requests[1]
    # The same Codex turn went on: the model saw its own calls and both outputs, on the same thread.
    assert follow_up.body["prompt_cache_key"] == request.body["prompt_cache_key"]
    assert [o.call_id for o in follow_up.function_outputs()] == [c.id for c in calls]
    assert len(follow_up.user_texts()) == 1  # nothing was injected or repeated
    assert second.usage is not None
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (input_words(follow_up), 8)
    assert engine_of(client).turns_in_flight == 0

    # The conversation goes on warm, even from a caller that re-serialises the arguments it got.
    history = answered(messages, choice.message, {"get_weather": "sunny", "get_time": "noon"})
    for call in history[1]["tool_calls"]:
        call["function"]["arguments"] = json.dumps(json.loads(call["function"]["arguments"]), separators=(",", ":"))
    assert history[1]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'  # not what the model wrote
    history += [{"role": "assistant", "content": second.choices[0].message.content}, user("thanks")]
    third = client.chat.completions.create(model="o4-mini", messages=history, tools=TOOLS)
    assert third.choices[0].message.content == "[turn 2] Echo: thanks"
    last = codex_model_server.requests[-1]
    assert last.body["prompt_cache_key"] == request.body["prompt_cache_key"]
    assert len(last.function_calls()) == 2  # the thread's own history, nothing injected twice


async def test_streamed_round_trip_async(aclient: AsyncCodexClient, codex_model_server: ModelServer) -> None:
    messages: list[Any] = [user('Note it. [[call:get_weather {"city": "Oslo"}]]')]
    stream = await aclient.chat.completions.create(
        model="o4-mini", messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    [call] = [tc for d in deltas for tc in d.tool_calls or []]
    assert (call.index, call.type, call.function and call.function.name) == (0, "function", "get_weather")
    assert call.function is not None and json.loads(call.function.arguments or "") == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 1

    assert call.id is not None
    follow = [
        *messages,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "rain"},
    ]
    stream = await aclient.chat.completions.create(model="o4-mini", messages=follow, tools=TOOLS, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Tool get_weather returned: rain"
    assert len(codex_model_server.requests) == 2


def test_a_retried_request_gets_the_pending_calls_again(client: CodexClient, codex_model_server: ModelServer) -> None:
    messages: list[Any] = [user(PARALLEL)]
    first = client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS)
    again = client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS)  # e.g. after a crash
    assert again.choices[0].message.tool_calls == first.choices[0].message.tool_calls
    assert again.usage == first.usage
    assert len(codex_model_server.requests) == 1  # the model was not asked twice
    done = client.chat.completions.create(
        model="o4-mini",
        messages=answered(messages, again.choices[0].message, {"get_weather": "a", "get_time": "b"}),
        tools=TOOLS,
    )
    assert done.choices[0].message.content == "Tool get_weather returned: a\nTool get_time returned: b"


def test_results_that_leave_a_call_out_are_rejected_and_lose_nothing(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    messages: list[Any] = [user(PARALLEL)]
    message = client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS).choices[0].message
    partial = answered(messages, message, {"get_weather": "a", "get_time": "b"})[:-1]
    with pytest.raises(openai.BadRequestError, match="did not have response messages: call_"):
        client.chat.completions.create(model="o4-mini", messages=partial, tools=TOOLS)
    complete = answered(messages, message, {"get_weather": "a", "get_time": "b"})
    reply = client.chat.completions.create(model="o4-mini", messages=complete, tools=TOOLS)
    assert reply.choices[0].message.content == "Tool get_weather returned: a\nTool get_time returned: b"
    assert len(codex_model_server.requests) == 2


def test_a_transcript_that_answers_calls_of_its_own_making_runs_as_a_transcript(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """A caller that keeps one of the model's two calls (and answers it) has a transcript OpenAI takes:
    it was refused ("no tool result for call ..."). It runs on a thread of its own, and the turn that
    made both calls still waits for their results."""
    messages: list[Any] = [user(PARALLEL)]
    message = client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS).choices[0].message
    kept = message.model_copy(update={"tool_calls": message.tool_calls[:1]})
    own = client.chat.completions.create(
        model="o4-mini", messages=answered(messages, kept, {"get_weather": "a"}), tools=TOOLS
    )
    assert own.choices[0].message.content == "Tool get_weather returned: a"
    both = answered(messages, message, {"get_weather": "b", "get_time": "c"})
    waited = client.chat.completions.create(model="o4-mini", messages=both, tools=TOOLS)
    assert waited.choices[0].message.content == "Tool get_weather returned: b\nTool get_time returned: c"
    first, transcript, resumed = codex_model_server.requests
    assert transcript.body["prompt_cache_key"] != first.body["prompt_cache_key"] == resumed.body["prompt_cache_key"]


def test_an_abandoned_suspension_is_given_up_and_the_thread_released(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    messages: list[Any] = [user(PARALLEL)]
    first = client.chat.completions.create(
        model="o4-mini", messages=messages, tools=TOOLS, extra_body={"tool_timeout": 0.5}
    )
    engine = engine_of(client)
    wait_until(lambda: engine.turns_in_flight == 0, what="the suspension to expire")
    assert len(engine.suspensions) == 0
    [thread] = engine.threads.loaded()
    assert not thread.lock.locked() and not thread.broken
    assert len(codex_model_server.requests) == 1  # interrupted: the model was not asked again

    # Results that come too late are a transcript like any other: replayed into a fresh thread.
    late = answered(messages, first.choices[0].message, {"get_weather": "a", "get_time": "b"})
    reply = client.chat.completions.create(model="o4-mini", messages=late, tools=TOOLS)
    assert reply.choices[0].message.content == "Tool get_weather returned: a\nTool get_time returned: b"
    replayed = codex_model_server.requests[-1]
    assert replayed.body["prompt_cache_key"] != codex_model_server.requests[0].body["prompt_cache_key"]


def test_results_sent_with_another_reasoning_effort_go_to_a_new_thread_and_the_turn_is_given_up(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """A turn cannot change its effort midway: the transcript goes to a new thread at the effort asked
    for (before, the suspended turn went on at its own, and nothing said so), and the turn nobody
    will resume releases its thread at once, not after its tool timeout."""
    messages: list[Any] = [user('Weather? [[call:get_weather {"city": "Paris"}]]')]
    first = client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS)
    results = answered(messages, first.choices[0].message, {"get_weather": "a"})
    reply = client.chat.completions.create(model="o4-mini", messages=results, tools=TOOLS, reasoning_effort="high")
    assert reply.choices[0].message.content == "Tool get_weather returned: a"
    one, two = codex_model_server.requests
    assert two.body["prompt_cache_key"] != one.body["prompt_cache_key"]
    assert two.body["reasoning"]["effort"] == "high"
    engine = engine_of(client)
    wait_until(lambda: engine.turns_in_flight == 0, what="the suspended turn to be given up")
    assert len(engine.suspensions) == 0 and len(codex_model_server.requests) == 2


def test_a_tool_transcript_without_a_thread_is_injected_as_calls_and_outputs(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    transcript: list[Any] = [
        user("What is the weather in Rome?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "hot"},
    ]
    reply = client.chat.completions.create(model="o4-mini", messages=transcript, tools=TOOLS)
    assert reply.choices[0].message.content == "Tool get_weather returned: hot"
    [request] = codex_model_server.requests
    [call] = request.function_calls()
    assert (call.call_id, call.name, call.arguments) == ("call_a", "get_weather", '{"city":"Rome"}')
    assert [(o.call_id, o.output) for o in request.function_outputs()] == [("call_a", "hot")]
    assert request.user_texts() == ["What is the weather in Rome?"]  # never flattened into text

    # The conversation then continues warm, like any other.
    follow = [*transcript, {"role": "assistant", "content": reply.choices[0].message.content}, user("thanks")]
    client.chat.completions.create(model="o4-mini", messages=follow, tools=TOOLS)
    assert codex_model_server.requests[-1].body["prompt_cache_key"] == request.body["prompt_cache_key"]


def test_a_tool_messages_images_are_injected_in_its_output_and_the_conversation_continues_warm(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """Beyond OpenAI's chat (which takes text parts only in a tool message): Codex shows the model a tool's images."""
    call = {"id": "call_a", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    content = [{"type": "text", "text": "a clock"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]
    transcript: list[Any] = [
        user("What time is it?"),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_a", "content": content},
    ]
    reply = client.chat.completions.create(model="o4-mini", messages=transcript, tools=TOOLS)
    assert reply.choices[0].message.content == "Tool get_time returned: a clock"
    [request] = codex_model_server.requests
    assert request.images() == [PNG_URL]
    follow = [*transcript, {"role": "assistant", "content": reply.choices[0].message.content}, user("thanks")]
    client.chat.completions.create(model="o4-mini", messages=follow, tools=TOOLS)
    assert codex_model_server.requests[-1].body["prompt_cache_key"] == request.body["prompt_cache_key"]


def test_results_then_a_user_message_give_up_the_turn_that_made_the_calls(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """As pydantic-ai sends a tool's image: its result, then a user message holding it. The request
    runs as a transcript on a thread of its own; the suspended turn is given up at once."""
    messages: list[Any] = [user("[[call:get_time {}]]")]
    calling = client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS)
    assert len(engine_of(client).suspensions) == 1
    messages = answered(messages, calling.choices[0].message, {"get_time": "See the image."})
    messages.append({"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]})
    client.chat.completions.create(model="o4-mini", messages=messages, tools=TOOLS)
    [call] = calling.choices[0].message.tool_calls or []
    assert engine_of(client).suspensions.for_results([ToolResult(call.id, "")]) is None
    asked, transcript = codex_model_server.requests
    assert transcript.body["prompt_cache_key"] != asked.body["prompt_cache_key"]
    assert [(o.call_id, o.output) for o in transcript.function_outputs()] == [(call.id, "See the image.")]
    assert transcript.images() == [PNG_URL]


def test_tool_choice_none_does_not_offer_the_tools(client: CodexClient, codex_model_server: ModelServer) -> None:
    reply = client.chat.completions.create(
        model="o4-mini", messages=[user('[[call:get_weather {"city": "Paris"}]]')], tools=TOOLS, tool_choice="none"
    )
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == "Not offered: get_weather"
    assert "get_weather" not in codex_model_server.requests[0].tool_names()


def test_forced_tool_choice_is_reported(client: CodexClient, codex_model_server: ModelServer) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="o4-mini", messages=[user("hi")], tools=TOOLS, tool_choice="required", parallel_tool_calls=False
    )
    assert raw.headers["x-claif-cod-ignored-params"] == "parallel_tool_calls,tool_choice"
    with pytest.raises(openai.BadRequestError, match="tool_choice"):
        client.chat.completions.create(
            model="o4-mini", messages=[user("hi")], tools=TOOLS, tool_choice="required", extra_body={"strict": True}
        )


def test_a_model_stream_that_breaks_after_a_call_ends_at_the_callers_deadline(
    tmp_path: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Known limit: Codex holds a broken response's announced call and reports the break only once
    the call is answered, so the batch never closes; the caller's timeout ends it and frees the thread."""
    home = write_codex_home(tmp_path / "retrying-home", codex_model_server.url, stream_max_retries=1)
    monkeypatch.setenv("CODEX_HOME", str(home))
    with CodexClient(daemon="off", model="o4-mini") as client:
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(
                model="o4-mini", messages=[user(f"[[flaky]] {PARALLEL}")], tools=TOOLS, timeout=2
            )
        engine = engine_of(client)
        wait_until(lambda: engine.turns_in_flight == 0, what="the interrupted turn to end")
        assert len(engine.suspensions) == 0
        reply = client.chat.completions.create(model="o4-mini", messages=[user("still there?")], tools=TOOLS)
    assert reply.choices[0].message.content == "Echo: still there?"


async def test_a_suspended_turn_keeps_its_process_from_eviction(
    codex_home: Path, tmp_path: Path, codex_model_server: ModelServer
) -> None:
    engine = Engine(max_processes=1)
    service = ChatService(engine)
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    try:
        ask = {"model": "o4-mini", "messages": [user("[[call:get_time]]")], "tools": TOOLS}
        options_a = RequestOptions(CodexConfig(working_dir=str(dirs[0])))
        first, _ = await service.complete(json.dumps(ask).encode(), options_a)
        [call] = first.choices[0].message.tool_calls or []
        [(_, suspended, _, _)] = engine.processes()
        # Another directory needs a second process: the cap is exceeded rather than the suspended one
        # evicted, and once that turn is over the idle newcomer is the one trimmed back to the cap.
        other = {"model": "o4-mini", "messages": [user("hi")]}
        reply, _ = await service.complete(
            json.dumps(other).encode(), RequestOptions(CodexConfig(working_dir=str(dirs[1])))
        )
        assert reply.choices[0].message.content == "Echo: hi"
        assert [server for _, server, _, _ in engine.processes()] == [suspended]
        assert suspended.alive
        answer = {
            **ask,
            "messages": [
                *ask["messages"],
                {"role": "assistant", "tool_calls": [msgspec.to_builtins(call)]},
                {"role": "tool", "tool_call_id": call.id, "content": "noon"},
            ],
        }
        done, _ = await service.complete(json.dumps(answer).encode(), options_a)
        assert done.choices[0].message.content == "Tool get_time returned: noon"
    finally:
        await engine.close()
