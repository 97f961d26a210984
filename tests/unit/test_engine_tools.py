"""engine/tools.py without Codex: call batches, the request/result router, suspensions and thread params."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from claif_cod.engine import wire
from claif_cod.engine.events import TurnUsage
from claif_cod.engine.suspensions import Suspension, Suspensions
from claif_cod.engine.tools import (
    NO_TOOLS,
    CallBatch,
    ThreadTools,
    ToolCall,
    ToolResult,
    ToolRouter,
    ToolSpec,
    canonical_arguments,
    thread_start_fields,
)


def raw(obj: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(obj))


def raw_item(turn_id: str, **item: Any) -> msgspec.Raw:
    return raw({"threadId": "t", "turnId": turn_id, "item": item})


def test_a_batch_keeps_calls_to_caller_tools_of_its_turn_only() -> None:
    batch = CallBatch(frozenset({"get_weather"}))
    call = {"type": "function_call", "name": "get_weather", "call_id": "c1", "arguments": '{"city":"Oslo"}'}
    batch.raw_item(raw_item("turn", **call), "turn")
    batch.raw_item(raw_item("turn", **{**call, "name": "exec_command", "call_id": "c2"}), "turn")  # Codex's own
    batch.raw_item(raw_item("other", **{**call, "call_id": "c3"}), "turn")  # another turn
    batch.raw_item(raw_item("turn", type="message", role="assistant", content=[]), "turn")
    # and the ids of Codex's own calls (a command's item has its call's id)
    assert batch.close() == ([ToolCall("c1", "get_weather", '{"city":"Oslo"}')], {"c2"})
    assert batch.close() == ([], set())  # the next response starts empty


async def test_the_router_pairs_requests_and_results_in_either_order() -> None:
    router = ToolRouter()
    params = raw({"threadId": "t", "turnId": "u", "callId": "c1", "tool": "f", "arguments": {}})
    waiting = asyncio.create_task(router.on_call(params))
    await asyncio.sleep(0)
    assert not waiting.done()  # Codex waits for the caller
    router.answer("t", [ToolResult("c1", "out")])
    assert await waiting == wire.DynamicToolCallResponse([wire.InputTextContent("out")], success=True)

    router.answer("t", [ToolResult("c2", "early", success=False)])  # before Codex asks for it
    late = await router.on_call(raw({"threadId": "t", "turnId": "u", "callId": "c2", "tool": "f"}))
    assert late == wire.DynamicToolCallResponse([wire.InputTextContent("early")], success=False)


async def test_dropping_a_thread_answers_what_codex_still_waits_for() -> None:
    router = ToolRouter()
    waiting = asyncio.create_task(router.on_call(raw({"threadId": "t", "turnId": "u", "callId": "c", "tool": "f"})))
    await asyncio.sleep(0)
    router.drop_thread("t", "gone")
    assert (await waiting).success is False


class _Handle:
    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id


class _Turn:
    def __init__(self, thread_id: str) -> None:
        self.handle = _Handle(thread_id)


def suspension(thread_id: str, *call_ids: str) -> Suspension:
    calls = tuple(ToolCall(c, "f", "{}") for c in call_ids)
    return Suspension(_Turn(thread_id), calls, "", TurnUsage(), NO_TOOLS)  # type: ignore[arg-type]


async def test_suspensions_are_found_by_results_thread_and_origin() -> None:
    expired: list[Suspension] = []
    registry = Suspensions(expired.append)
    first, second = suspension("t1", "a", "b"), suspension("t2", "c")
    registry.add(first, 60)
    registry.add(second, 60)
    registry.tag_origin(first, "digest")
    assert registry.for_results([ToolResult("b", ""), ToolResult("a", "")]) is first
    assert registry.for_results([ToolResult("zzz", "")]) is None
    assert registry.for_thread("t2") is second
    assert registry.for_origin("digest") is first
    # A transcript that answers only some of a turn's calls, or several turns', is the caller's own.
    assert registry.for_results([ToolResult("a", "")]) is None
    assert registry.for_results([ToolResult("a", ""), ToolResult("b", ""), ToolResult("c", "")]) is None
    assert registry.for_results([ToolResult("a", ""), ToolResult("b", ""), ToolResult("zzz", "")]) is None
    registry.take(first)
    assert registry.for_results([ToolResult("a", ""), ToolResult("b", "")]) is None
    assert registry.for_origin("digest") is None
    assert len(registry) == 1 and expired == []


async def test_a_suspension_expires_at_its_deadline() -> None:
    expired = asyncio.Event()
    registry = Suspensions(lambda _s: expired.set())
    registry.add(suspension("t", "a"), 0.01)
    await asyncio.wait_for(expired.wait(), 5)
    assert len(registry) == 0


async def test_past_its_limit_the_turn_suspended_longest_ago_is_given_up() -> None:
    """Libraries that end on a tool call never send its result: each such turn stayed suspended,
    its thread loaded, until its deadline, however many piled up."""
    given_up: list[Suspension] = []
    registry = Suspensions(given_up.append, limit=2)
    first, second, third = suspension("t1", "a"), suspension("t2", "b"), suspension("t3", "c")
    for each in (first, second):
        registry.add(each, 600)
    registry.take(first)  # resumed: no longer counts
    registry.add(first, 600)  # suspended again, on its next calls: now the newest
    assert given_up == []
    registry.add(third, 600)
    assert given_up == [second] and len(registry) == 2
    assert registry.for_thread("t2") is None and registry.for_results([ToolResult("b", "")]) is None
    assert second.expiry is not None and second.expiry.cancelled()
    assert registry.for_thread("t1") is first and registry.for_thread("t3") is third
    for each in (first, third):
        registry.take(each)


def test_canonical_arguments_ignore_formatting_only() -> None:
    assert canonical_arguments('{"b": 1, "a": [1, 2]}') == canonical_arguments('{"a":[1,2],"b":1}')
    assert canonical_arguments('{"a": 1}') != canonical_arguments('{"a": 2}')
    assert canonical_arguments("not json") == "not json"


def test_thread_start_fields() -> None:
    assert thread_start_fields(NO_TOOLS) == {}
    assert thread_start_fields(ThreadTools(builtin=False)) == {}  # tools-only fields: engine/tools_only.py
    spec = ToolSpec("f", "does f", {"type": "object", "properties": {"x": {"type": "string"}}})
    fields = thread_start_fields(ThreadTools((spec,)))
    assert fields == {
        "dynamic_tools": [wire.DynamicToolSpec(name="f", description="does f", input_schema=spec.parameters)],
        "experimental_raw_events": True,
    }
    assert thread_start_fields(ThreadTools((spec,), builtin=False)) == fields
    params = msgspec.json.decode(msgspec.json.encode(wire.ThreadStartParams(cwd="/w", **fields)))
    assert params["dynamicTools"][0] == {
        "name": "f",
        "description": "does f",
        "inputSchema": spec.parameters,
        "type": "function",
    }
    assert params["experimentalRawEvents"] is True


def test_arguments_nested_too_deeply_to_read_are_compared_as_sent() -> None:
    """OpenAI takes any string as a call's arguments: one msgspec cannot read (deeper than the
    recursion limit) is kept as it is, not a 500."""
    deep = "[" * 5000 + "]" * 5000
    assert canonical_arguments(deep) == deep
    assert canonical_arguments('{"b": 1, "a": 2}') == '{"a":2,"b":1}'
