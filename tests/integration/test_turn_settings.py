"""A turn names its model and reasoning effort only when they change the thread's (real Codex).

Codex treats a ``model`` or ``effort`` in ``turn/start`` as a change of the thread's turn
settings, which it applies before calling the model (measured: ~0.3 ms more to the first token
on every turn), and the change stays for later turns.  So a turn asking for what its thread
already runs sends nothing, a switch is sent once and remembered, and a request that names no
effort gets the model's default again, as each OpenAI request does.  What reaches the model
proves each turn ran as its request asked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from openai.types.chat import ChatCompletionMessageParam

from claif_cod import CodexClient
from claif_cod.engine import appserver
from claif_cod.engine.errors import CodexRpcError
from claif_cod.testing import ModelServer


@pytest.fixture
def turn_starts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The parameters of every ``turn/start`` the engine sends."""
    sent: list[dict[str, Any]] = []
    request = appserver.AppServer.request

    async def recording(self: appserver.AppServer, method: str, params: object, *args: Any, **kwargs: Any) -> Any:
        if method == "turn/start":
            sent.append(msgspec.to_builtins(params))
        return await request(self, method, params, *args, **kwargs)

    monkeypatch.setattr(appserver.AppServer, "request", recording)
    return sent


def test_the_threads_own_model_is_not_sent_again_and_a_switch_is_sent_once(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, turn_starts: list[dict[str, Any]]
) -> None:
    messages: list[ChatCompletionMessageParam] = []
    with CodexClient(daemon="off") as client:
        for model in ("o4-mini", "o4-mini", "o4", "o4", "o4-mini"):
            messages.append({"role": "user", "content": f"question {len(messages) // 2 + 1}"})
            reply = client.chat.completions.create(model=model, messages=messages)
            messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
    reached = [request.body["model"] for request in codex_model_server.requests]
    assert reached == ["o4-mini", "o4-mini", "o4", "o4", "o4-mini"]
    # The thread started on o4-mini; the switches to o4 and back are the only overrides.
    assert [start.get("model") for start in turn_starts] == [None, None, "o4", None, "o4-mini"]


def test_a_request_without_an_effort_gets_the_default_again(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, turn_starts: list[dict[str, Any]]
) -> None:
    messages: list[ChatCompletionMessageParam] = []
    efforts: list[Any] = [None, "high", "high", None, None, "low", None]
    with CodexClient(daemon="off", model="o4-mini") as client:
        for effort in efforts:
            messages.append({"role": "user", "content": f"question {len(messages) // 2 + 1}"})
            extra = {} if effort is None else {"reasoning_effort": effort}
            reply = client.chat.completions.create(messages=messages, **extra)
            messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
    reached = [request.body["reasoning"]["effort"] for request in codex_model_server.requests]
    # medium is the offline catalog's default_reasoning_level for o4-mini
    assert reached == ["medium", "high", "high", "medium", "medium", "low", "medium"]
    assert len({start["threadId"] for start in turn_starts}) == 1
    assert [start.get("effort") for start in turn_starts] == [None, "high", None, "medium", None, "low", "medium"]


def test_a_response_without_a_summary_gets_none_after_one_that_asked(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, turn_starts: list[dict[str, Any]]
) -> None:
    previous: str | None = None
    with CodexClient(daemon="off", model="o4-mini") as client:
        for summary in (None, "detailed", None, "concise", "concise", None):
            extra: dict[str, Any] = {} if summary is None else {"reasoning": {"summary": summary}}
            if previous is not None:
                extra["previous_response_id"] = previous
            previous = client.responses.create(input="go on", **extra).id
    reached = [request.body["reasoning"].get("summary") for request in codex_model_server.requests]
    assert reached == [None, "detailed", None, "concise", "concise", None]
    assert len({start["threadId"] for start in turn_starts}) == 1
    assert [start.get("summary") for start in turn_starts] == [None, "detailed", "none", "concise", None, "none"]


def test_a_failing_model_list_leaves_the_effort_as_it_was_and_says_so(
    codex_home: Path,
    workdir: Path,
    codex_model_server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = appserver.AppServer.request

    async def no_model_list(self: appserver.AppServer, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "model/list":
            raise CodexRpcError(method, -32603, "model catalog unavailable")
        return await request(self, method, *args, **kwargs)

    monkeypatch.setattr(appserver.AppServer, "request", no_model_list)
    caplog.set_level(logging.WARNING, logger="claif_cod.engine")
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "first"}]
    with CodexClient(daemon="off", model="o4-mini") as client:
        reply = client.chat.completions.create(messages=messages, reasoning_effort="high")
        messages += [
            {"role": "assistant", "content": reply.choices[0].message.content or ""},
            {"role": "user", "content": "second"},
        ]
        client.chat.completions.create(messages=messages)  # the turn still runs
    assert [request.body["reasoning"]["effort"] for request in codex_model_server.requests] == ["high", "high"]
    assert [r.msg for r in caplog.records] == ["turn.effort_not_reset"]
