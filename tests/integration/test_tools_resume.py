"""Caller tools on a thread that left its process (idle unload): never resumed, re-seeded instead.

Codex sends no raw response events for a resumed thread, and those are how claif_cod sees a model
response's calls to caller tools: a resumed thread with caller tools would never report its calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from claif_cod import AsyncCodexClient
from claif_cod.engine.engine import Engine
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex

TIME: dict[str, Any] = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
GUARD_S = 60.0
"""Only so that a hang fails the test instead of the whole run (pytest-timeout): never reached when green."""


def engine_of(client: AsyncCodexClient) -> Engine:
    assert client.backend is not None
    backend = client.backend.local
    assert isinstance(backend, InProcessBackend)
    return backend.engine


async def unload_all(client: AsyncCodexClient) -> int:
    """What the idle sweeper does to threads unused for its timeout, to every thread not in use now."""
    engine = engine_of(client)

    async def sweep() -> int:
        engine.threads.idle.timeout = 0.0
        try:
            return await engine.threads.idle.sweep()
        finally:
            engine.threads.idle.timeout = None

    return await client._core.loop.run_async(sweep())  # the engine's own loop


async def test_previous_response_id_after_idle_unload_reports_the_calls(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    first = await aclient.responses.create(input="Hello there", tools=[TIME])
    assert first.output_text
    assert await unload_all(aclient) == 1

    second = await asyncio.wait_for(
        aclient.responses.create(previous_response_id=first.id, input="[[call:get_time {}]]", tools=[TIME]), GUARD_S
    )

    [call] = [item for item in second.output if item.type == "function_call"]
    assert call.name == "get_time"
    one, two = codex_model_server.requests
    assert one.body["prompt_cache_key"] != two.body["prompt_cache_key"]  # a new thread, not the resumed one
    assert two.messages()[:3] == [("user", "Hello there"), ("assistant", first.output_text),
                                  ("user", "[[call:get_time {}]]")]  # fmt: skip
    third = await asyncio.wait_for(
        aclient.responses.create(
            previous_response_id=second.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "noon"}],
            tools=[TIME],
        ),
        GUARD_S,
    )
    assert third.output_text == "Tool get_time returned: noon"
    assert codex_model_server.requests[2].body["prompt_cache_key"] == two.body["prompt_cache_key"]


async def test_a_branch_of_a_thread_with_tools_reports_the_calls(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    """A branch from an older response would fork its thread: a fork gets no raw events either."""
    first = await aclient.responses.create(input="one", tools=[TIME])
    await aclient.responses.create(previous_response_id=first.id, input="two", tools=[TIME])

    branch = await asyncio.wait_for(
        aclient.responses.create(previous_response_id=first.id, input="[[call:get_time {}]]", tools=[TIME]), GUARD_S
    )

    [call] = [item for item in branch.output if item.type == "function_call"]
    assert call.name == "get_time"
    assert codex_model_server.requests[-1].user_texts() == ["one", "[[call:get_time {}]]"]  # not "two"


async def test_a_turn_suspended_on_tool_calls_is_never_unloaded(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    first = await aclient.responses.create(input="[[call:get_time {}]]", tools=[TIME])
    engine = engine_of(aclient)
    [call] = [item for item in first.output if item.type == "function_call"]
    [thread] = engine.threads.loaded()
    assert thread.lock.locked() and len(engine.suspensions) == 1  # the suspension holds the thread

    assert await unload_all(aclient) == 0

    assert engine.threads.loaded() == [thread] and not thread.unloaded
    second = await asyncio.wait_for(
        aclient.responses.create(
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "noon"}],
            tools=[TIME],
        ),
        GUARD_S,
    )
    assert second.output_text == "Tool get_time returned: noon"
    one, two = codex_model_server.requests
    assert one.body["prompt_cache_key"] == two.body["prompt_cache_key"]  # the same turn went on
    assert not thread.lock.locked() and len(engine.suspensions) == 0
    assert await unload_all(aclient) == 1  # released when the turn ended: now it may go


async def test_a_chat_conversation_with_tools_after_idle_unload(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    """Chat threads are ephemeral: after an unload the history the caller re-sends seeds a new one."""
    tools: list[Any] = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    history: list[Any] = [{"role": "user", "content": "Hello there"}]
    first = await aclient.chat.completions.create(model="o4-mini", messages=history, tools=tools)
    assert await unload_all(aclient) == 1
    history += [{"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "[[call:get_time {}]]"}]  # fmt: skip

    second = await asyncio.wait_for(
        aclient.chat.completions.create(model="o4-mini", messages=history, tools=tools), GUARD_S
    )

    assert second.choices[0].finish_reason == "tool_calls"
    one, two = codex_model_server.requests
    assert one.body["prompt_cache_key"] != two.body["prompt_cache_key"]
    assert two.messages()[:2] == [("user", "Hello there"), ("assistant", "Echo: Hello there")]


async def test_tools_added_when_continuing_a_loaded_thread_are_offered(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    """Codex fixes a thread's tools when it starts it: continuing a thread started without tools
    with tools needs a new thread, seeded with the conversation, that offers them."""
    first = await aclient.responses.create(input="Hello there")
    second = await asyncio.wait_for(
        aclient.responses.create(previous_response_id=first.id, input="[[call:get_time {}]]", tools=[TIME]), GUARD_S
    )

    [call] = [item for item in second.output if item.type == "function_call"]
    assert call.name == "get_time"
    one, two = codex_model_server.requests
    assert "get_time" not in one.tool_names() and "get_time" in two.tool_names()
    assert one.body["prompt_cache_key"] != two.body["prompt_cache_key"]  # a new thread
    assert two.messages()[:3] == [("user", "Hello there"), ("assistant", first.output_text),
                                  ("user", "[[call:get_time {}]]")]  # fmt: skip


async def test_tools_dropped_when_continuing_a_loaded_thread_are_not_offered(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    first = await aclient.responses.create(input="Hello there", tools=[TIME])
    second = await aclient.responses.create(previous_response_id=first.id, input="and now?")

    assert second.output_text
    one, two = codex_model_server.requests
    assert "get_time" in one.tool_names() and "get_time" not in two.tool_names()
    assert two.messages()[:3] == [("user", "Hello there"), ("assistant", first.output_text), ("user", "and now?")]
