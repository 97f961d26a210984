"""An interrupt Codex refuses because the turn it has just started is not active yet is asked again;
any other refusal is an answer. (With Codex itself: ``integration/test_turn_start_cancelled.py``.)"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable

import msgspec
import pytest

from claif_cod.engine.config import ProcessKey
from claif_cod.engine.errors import CodexRpcError
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.liveness import DEFAULT_LIVENESS, Liveness
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.thread_messages import Notification, ThreadMessage
from claif_cod.engine.turns import Turn

TOO_EARLY = CodexRpcError("turn/interrupt", -32600, "no active turn to interrupt")
PREVIOUS_STILL_ACTIVE = CodexRpcError(
    "turn/interrupt", -32600, "expected active turn id u but found 01a250e8-da75-7e70-918e-e7fd3c815bbf"
)
"""Codex 0.163's refusal right after the thread's previous turn ended interrupted: it holds that one active a while."""


class _Server:
    """Answers ``turn/interrupt`` with ``refusals`` (one each, in order), then accepts it."""

    def __init__(self, refusals: list[CodexRpcError], liveness: Liveness = DEFAULT_LIVENESS) -> None:
        self.refusals = refusals
        self.liveness = liveness
        self.asked = 0
        self.accepted: Callable[[], None] = lambda: None

    def check_alive_soon(self) -> None:
        pass

    async def request(self, method: str, params: object, result_type: object, timeout: float) -> msgspec.Raw:
        assert method == "turn/interrupt"
        self.asked += 1
        if self.refusals:
            raise self.refusals.pop(0)
        self.accepted()
        return msgspec.Raw(b"{}")


def _turn(server: _Server, queue: Inbox[ThreadMessage] | None = None) -> Turn:
    key = ProcessKey("codex", None, None, "/w", None, None)
    handle = ThreadHandle("t", key, None, server)  # type: ignore[arg-type]
    return Turn(handle, "u", queue or Inbox[ThreadMessage](), None, lambda _turn, _outcome: None)


async def test_refused_as_too_early_it_is_asked_again() -> None:
    server = _Server([TOO_EARLY, TOO_EARLY])
    await _turn(server).interrupt()
    assert server.asked == 3


async def test_refused_while_the_previous_turn_is_still_active_it_is_asked_again() -> None:
    server = _Server([PREVIOUS_STILL_ACTIVE, TOO_EARLY])
    await _turn(server).interrupt()
    assert server.asked == 3


@pytest.mark.parametrize(
    "refusal",
    [CodexRpcError("turn/interrupt", -32600, "thread not found: t"), CodexRpcError("turn/interrupt", -32603, "no")],
)
async def test_any_other_refusal_is_an_answer(refusal: CodexRpcError) -> None:
    server = _Server([refusal])
    await _turn(server).interrupt()
    assert server.asked == 1


async def test_it_is_asked_again_only_within_the_grace() -> None:
    grace = 0.1
    server = _Server([TOO_EARLY] * 100, dataclasses.replace(DEFAULT_LIVENESS, interrupt_grace=grace))
    started = time.monotonic()
    await _turn(server).interrupt()
    assert time.monotonic() - started < grace
    assert 2 <= server.asked <= 5  # 5, 10, 20, 40 ms apart


async def test_a_turn_given_up_is_asked_again_while_waiting_for_its_end() -> None:
    """``stop()`` (a caller gone, a stop sequence): interrupt, then wait for ``turn/completed``, asking
    again while the interrupt is refused; Codex ends the turn once it takes one."""
    queue = Inbox[ThreadMessage]()
    server = _Server([TOO_EARLY, TOO_EARLY])
    completed = {"threadId": "t", "turn": {"id": "u", "items": [], "status": "interrupted"}}
    server.accepted = lambda: queue.put_nowait(
        Notification("turn/completed", msgspec.Raw(json.dumps(completed).encode()))
    )
    turn = _turn(server, queue)
    started = time.monotonic()
    await turn.stop()
    assert server.asked == 3
    assert turn.finished
    assert time.monotonic() - started < 1  # not the interrupt's grace of 5 s
