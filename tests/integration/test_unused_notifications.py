"""Codex is asked not to send the notifications the engine never reads (real Codex).

A warm turn's ~17 lines from Codex included ``turn/started``, two ``thread/status/changed`` and
``account/rateLimits/updated``, each encoded and written by Codex, then read, decoded and routed
to the turn's task by the engine, only to be dropped; ``initialize`` opts out of them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest
from openai.types.chat import ChatCompletionMessageParam

from claif_cod import CodexClient
from claif_cod.engine import appserver
from claif_cod.engine.wire_notifications import UNUSED_NOTIFICATIONS
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


class _Line(msgspec.Struct):
    method: str | None = None


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The method of every notification or request Codex sends, counted."""
    methods: Counter[str] = Counter()
    dispatch = appserver.AppServer._dispatch

    def recording(self: appserver.AppServer, line: bytes) -> None:
        method = msgspec.json.decode(line, type=_Line).method
        if method is not None:
            methods[method] += 1
        dispatch(self, line)

    monkeypatch.setattr(appserver.AppServer, "_dispatch", recording)
    return methods


def test_codex_sends_none_of_the_notifications_the_engine_drops(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, received: Counter[str]
) -> None:
    messages: list[ChatCompletionMessageParam] = []
    with CodexClient(daemon="off") as client:
        for turn, question in enumerate(("first", "second"), 1):
            messages.append({"role": "user", "content": question})
            reply = client.chat.completions.create(model="o4-mini", messages=messages, stream=True)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in reply if chunk.choices)
            assert text.endswith(f"Echo: {question}") and (turn == 1 or text.startswith(f"[turn {turn}]"))
            messages.append({"role": "assistant", "content": text})
        usage = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "x"}]).usage
    assert usage is not None and usage.total_tokens > 0  # thread/tokenUsage/updated still comes
    assert received["turn/completed"] == 3 and received["item/agentMessage/delta"] >= 3
    assert not {method: received[method] for method in UNUSED_NOTIFICATIONS if received[method]}
