"""The check that follows each resume (engine/rollout_check.py): only Codex's own words for a rollout
cut short count as one; any other answer lets the resume stand. (With Codex itself:
``integration/test_rollout_cut_short.py``.)"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import msgspec
import pytest

from claif_cod.engine import rollout_check, wire
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.errors import CodexRequestTimedOut, CodexRpcError

SHRANK = CodexRpcError(
    "thread/fork",
    -32603,
    "failed to prepare paginated fork: thread-store internal error: durable rollout shrank before projection",
)


class _Server:
    """Answers ``thread/fork`` and ``thread/unsubscribe`` with what it is given (an error is raised)."""

    def __init__(self, fork: Exception | None = None, unsubscribe: Exception | None = None) -> None:
        self.answers = {"thread/fork": fork, "thread/unsubscribe": unsubscribe}
        self.asked: list[tuple[str, Any]] = []

    async def request(self, method: str, params: Any, result_type: Any) -> Any:
        self.asked.append((method, params))
        error = self.answers[method]
        if error is not None:
            raise error
        if method == "thread/fork":
            return wire.ThreadResult(thread=wire.Thread(id="fork"))
        return wire.ThreadUnsubscribeResult(status="unsubscribed")


def check(server: _Server) -> str | None:
    return asyncio.run(rollout_check.cut_short(cast(AppServer, server), "thread"))


def test_a_rollout_codex_finds_shrunk_is_cut_short_in_codexs_words() -> None:
    server = _Server(fork=SHRANK)
    assert check(server) == SHRANK.message
    [(method, params)] = server.asked
    assert method == "thread/fork"
    assert (params.thread_id, params.ephemeral, params.exclude_turns) == ("thread", True, True)


def test_an_intact_rollouts_fork_is_let_go() -> None:
    server = _Server()
    assert check(server) is None
    assert [(m, p.thread_id) for m, p in server.asked] == [("thread/fork", "thread"), ("thread/unsubscribe", "fork")]


def test_a_fork_refused_otherwise_lets_the_resume_stand_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    server = _Server(fork=CodexRpcError("thread/fork", -32600, "ephemeral paginated thread/fork requires more"))
    assert check(server) is None
    [refused] = [r for r in caplog.records if r.msg == "engine.rollout_check_refused"]
    assert "requires more" in refused.error  # type: ignore[attr-defined]


def test_a_fork_that_cannot_be_let_go_does_not_fail_the_resume(caplog: pytest.LogCaptureFixture) -> None:
    """Codex's answer to the unsubscribe is no answer to the check, which has passed."""
    server = _Server(unsubscribe=CodexRpcError("thread/unsubscribe", -32601, "unknown method thread/unsubscribe"))
    assert check(server) is None
    assert [r.msg for r in caplog.records] == ["engine.rollout_check_fork_kept"]


def test_a_check_codex_does_not_answer_in_time_lets_the_resume_stand(caplog: pytest.LogCaptureFixture) -> None:
    """A process that answers a probe but not the fork (busy): no news of the rollout, and the
    resume that succeeded is not failed for it (its thread would be left loaded, with no handle)."""
    assert check(_Server(fork=CodexRequestTimedOut("thread/fork", 30))) is None
    assert check(_Server(unsubscribe=CodexRequestTimedOut("thread/unsubscribe", 30))) is None
    logged = [r.msg for r in caplog.records]
    assert logged == ["engine.rollout_check_unanswered", "engine.rollout_check_fork_kept"]


def test_the_fork_params_send_exclude_turns_only_when_asked() -> None:
    """Defaults are not sent (``omit_defaults``): Codex refuses an ephemeral fork of a paginated
    thread without ``excludeTurns: true``, so a default of true was never sent."""
    assert b"excludeTurns" not in msgspec.json.encode(wire.ThreadForkParams(thread_id="t"))
    assert b'"excludeTurns":true' in msgspec.json.encode(wire.ThreadForkParams(thread_id="t", exclude_turns=True))
