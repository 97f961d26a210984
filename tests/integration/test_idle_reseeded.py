"""A conversation's thread unloaded between the request's finding it and its turn: seeded anew.

An anonymous conversation's thread is ephemeral (no rollout), so once unloaded it cannot be
resumed; with an idle timeout shorter than a request's own steps (or a sweep that lands just
then) the request failed with APIConnectionError. Nothing of it had run: it seeds a new thread
from the history it carries, as after any unload (in-process engine, real Codex)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from chat_messages import user

from claif_cod import CodexClient
from claif_cod.engine import idle
from claif_cod.engine.engine import Engine
from claif_cod.engine.images import Image
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.turns import TurnOptions
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def sweep_before_the_turn(monkeypatch: pytest.MonkeyPatch, *, closed: bool) -> list[int]:
    """The warm thread (one with a turn behind it) is swept right before its turn starts, once;
    ``closed``: and the process the sweep recycled has exited by then (its exit recorded)."""
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 3600.0)
    start_turn = Engine.start_turn
    sweeps: list[int] = []

    async def sweep_first(
        self: Engine, handle: ThreadHandle, text: str | None, options: TurnOptions, *, images: Sequence[Image] = ()
    ) -> Any:
        if handle.turns and not sweeps:
            handle.last_used -= 7200
            recycled = handle.server
            sweeps.append(await self.threads.idle.sweep())
            if closed:
                await recycled.close()
                assert recycled.death is not None
        return await start_turn(self, handle, text, options, images=images)

    monkeypatch.setattr(Engine, "start_turn", sweep_first)
    return sweeps


@pytest.mark.parametrize("exited", [False, True], ids=["process live", "recycled process exited"])
def test_a_chat_whose_thread_is_unloaded_before_its_turn_is_seeded_anew(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch, exited: bool
) -> None:
    """With the process the sweep recycled exited by the time the turn came, the request failed with
    that exit ("stopped by claif_cod"), an APIConnectionError, though nothing of it had run."""
    sweeps = sweep_before_the_turn(monkeypatch, closed=exited)
    with CodexClient(daemon="off", model="o4-mini", timeout=10, max_retries=0) as client:
        first = client.chat.completions.create(messages=[user("one")])
        said = first.choices[0].message.content
        again = [user("one"), {"role": "assistant", "content": said}, user("two")]
        reply = client.chat.completions.create(messages=again)  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "[turn 2] Echo: two"
    assert sweeps == [1]
    assert len({r.body["prompt_cache_key"] for r in codex_model_server.requests}) == 2  # a new thread


def test_a_response_whose_thread_is_unloaded_before_its_turn_is_seeded_anew(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweeps = sweep_before_the_turn(monkeypatch, closed=False)
    with CodexClient(daemon="off", model="o4-mini", timeout=10, max_retries=0) as client:
        first = client.responses.create(input="alpha", store=False)
        transcript: Any = [
            {"role": "user", "content": "alpha"},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "beta"},
        ]
        second = client.responses.create(input=transcript, store=False)
        assert second.output_text == "[turn 2] Echo: beta"
    assert sweeps == [1]
    assert len({r.body["prompt_cache_key"] for r in codex_model_server.requests}) == 2
