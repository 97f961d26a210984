"""A thread the engine hands to a request counts as used: the idle sweep leaves it to the request's
turn (in-process engine, real Codex)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from claif_cod import CodexClient
from claif_cod.engine import idle
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.threads import Threads
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex


def test_a_stored_responses_thread_is_not_unloaded_between_its_lookup_and_its_turn(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A continuation injects its new items before its turn takes the thread: a sweep in between
    unloaded the thread the request had just looked up (and replaced its emptied process), and the
    request failed with APIConnectionError ("codex app-server ... exited")."""
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 3600.0)
    inject = Threads.inject
    sweeps: list[int] = []

    async def sweep_first(self: Threads, handle: ThreadHandle, history: Sequence[Any]) -> None:
        if history:  # the continuation's (a new thread's own history is empty here)
            sweeps.append(await self.idle.sweep())
        await inject(self, handle, history)

    monkeypatch.setattr(Threads, "inject", sweep_first)
    with CodexClient(daemon="off", model="o4-mini", timeout=10) as client:
        first = client.responses.create(input="alpha")
        assert isinstance(client.backend.local, InProcessBackend)
        [handle] = client.backend.local.engine.threads.loaded()
        handle.last_used -= 7200  # nobody used it for two hours, until the request below
        second = client.responses.create(input="beta", previous_response_id=first.id, instructions="Be brief.")
        assert second.output_text == "[turn 2] Echo: beta"
    assert sweeps == [0]


def test_a_thread_unloaded_between_its_lookup_and_an_injection_is_resumed_for_it(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a timeout shorter than the request's own steps the sweep does take it: the injection
    resumes it (its process was even replaced meanwhile, as the sweep left it no loaded thread)."""
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 3600.0)
    inject = Threads.inject
    sweeps: list[int] = []

    async def sweep_first(self: Threads, handle: ThreadHandle, history: Sequence[Any]) -> None:
        if history:
            handle.last_used -= 7200
            sweeps.append(await self.idle.sweep())
        await inject(self, handle, history)

    monkeypatch.setattr(Threads, "inject", sweep_first)
    with CodexClient(daemon="off", model="o4-mini", timeout=10) as client:
        first = client.responses.create(input="alpha")
        second = client.responses.create(input="beta", previous_response_id=first.id, instructions="Be brief.")
        assert second.output_text == "[turn 2] Echo: beta"
    assert sweeps == [1]
    assert len({r.body["prompt_cache_key"] for r in codex_model_server.requests}) == 1  # the same thread, resumed
