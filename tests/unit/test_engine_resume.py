"""A turn suspended on caller tool calls, resumed by the request that brings their results: that
request's deadlines, approvals and tool timeout are the turn's from then on, and only a request that
asks for the turn's own settings resumes it (engine/engine.py: ``resumable``, ``resume_tools``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from claif_cod.engine import wire
from claif_cod.engine.approvals import ApprovalRequest, Decision
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.engine import Engine
from claif_cod.engine.events import ToolCallsRequested, TurnUsage
from claif_cod.engine.tools import ThreadTools, ToolCall, ToolResult, ToolSpec
from claif_cod.engine.turns import TurnOptions

KEY = ProcessKey("codex", None, None, "/work", None, None)
TOOLS = ThreadTools((ToolSpec("f"),))


@dataclass
class _Server:
    alive: bool = True


@dataclass
class _Handle:
    thread_id: str = "t"
    key: ProcessKey = KEY
    tools: ThreadTools = TOOLS
    server: _Server = field(default_factory=_Server)


@dataclass
class _Turn:
    """What the engine asks of a suspended turn."""

    handle: _Handle = field(default_factory=_Handle)
    resumed: list[tuple[float | None, float | None]] = field(default_factory=list)
    given_up: bool = False

    @property
    def server(self) -> _Server:
        return self.handle.server

    def resume(self, timeout: float | None, gap: float | None = None) -> None:
        self.resumed.append((timeout, gap))

    def give_up(self) -> None:
        self.given_up = True


def _suspend(engine: Engine, turn: _Turn, call_id: str) -> Any:
    engine._suspended(turn, ToolCallsRequested(calls=(ToolCall(call_id, "f", "{}"),), usage=TurnUsage()))  # type: ignore[arg-type]
    suspension = engine.suspensions.for_thread(turn.handle.thread_id)
    assert suspension is not None and suspension.expiry is not None
    return suspension


def _answered_by(asked: list[str], name: str) -> Any:
    async def handler(request: ApprovalRequest) -> Decision:
        asked.append(name)
        return "accept"

    return handler


async def _approval(engine: Engine) -> str:
    params = msgspec.json.encode(wire.CommandApprovalParams(thread_id="t", turn_id="u", item_id="i", command="ls"))
    result = await engine._on_server_request("item/commandExecution/requestApproval", msgspec.Raw(params))
    assert isinstance(result, wire.ApprovalDecisionResult)
    return result.decision


async def test_the_resuming_requests_deadlines_approvals_and_tool_timeout_are_the_turns() -> None:
    engine = Engine(thread_idle_timeout=None)
    loop = asyncio.get_running_loop()
    asked: list[str] = []
    turn = _Turn()
    engine._running["t"] = TurnOptions(approvals=_answered_by(asked, "first"), tool_timeout=600.0)
    first = _suspend(engine, turn, "c1")
    assert 599 < first.expiry.when() - loop.time() <= 600
    assert await _approval(engine) == "accept" and asked == ["first"]

    deadline = time.monotonic() + 30.0
    second = TurnOptions(deadline=deadline, gap_timeout=5.0, approvals=_answered_by(asked, "second"), tool_timeout=7.0)
    assert engine.resume_tools(first, (ToolResult("c1", "out"),), second) is turn  # type: ignore[comparison-overlap]
    [(timeout, gap)] = turn.resumed
    assert 29 < timeout <= 30.0 and gap == 5.0  # what is left of the resuming request's deadline
    assert await _approval(engine) == "accept" and asked == ["first", "second"]
    again = _suspend(engine, turn, "c2")  # the model calls a tool again in the same turn
    assert 6 < again.expiry.when() - loop.time() <= 7
    engine.release(again)


@pytest.mark.parametrize(
    ("change", "resumes"),
    [
        ({}, True),
        ({"model": None}, True),  # the request names none: the turn's is fine
        ({"deadline": 1.0, "tool_timeout": 5.0}, True),  # the request's own waits
        ({"model": "gpt-5"}, False),
        ({"effort": "high"}, False),
        ({"summary": "auto"}, False),
        ({"output_schema": {"type": "object"}}, False),
    ],
)
async def test_only_the_turns_own_settings_resume_it(change: dict[str, Any], resumes: bool) -> None:
    engine = Engine(thread_idle_timeout=None)
    started = TurnOptions(model="o4-mini", effort="low")
    engine._running["t"] = started
    suspension = _suspend(engine, _Turn(), "c1")
    options = TurnOptions(**{"model": "o4-mini", "effort": "low", **change})
    assert engine.resumable(suspension, KEY, TOOLS, options) is resumes
    engine.release(suspension)


async def test_other_codex_settings_tools_or_a_process_gone_do_not_resume_it() -> None:
    engine = Engine(thread_idle_timeout=None)
    engine._running["t"] = TurnOptions()
    turn = _Turn()
    suspension = _suspend(engine, turn, "c1")
    elsewhere = ProcessKey("codex", None, None, "/elsewhere", None, None)
    assert not engine.resumable(suspension, elsewhere, TOOLS, TurnOptions())
    assert not engine.resumable(suspension, KEY, ThreadTools((ToolSpec("g"),)), TurnOptions())
    turn.handle.server.alive = False
    assert not engine.resumable(suspension, KEY, TOOLS, TurnOptions())
    engine.release(suspension)
    assert turn.given_up and engine.suspensions.for_thread("t") is None
