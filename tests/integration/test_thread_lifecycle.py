"""Which threads Codex persists, and what happens to threads nobody uses (in-process engine, real Codex)."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest
from chat_messages import user

from claif_cod import CodexClient
from claif_cod.engine import idle
from claif_cod.engine.engine import Engine
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex


def engine_of(client: CodexClient) -> Engine:
    assert client.backend is not None and isinstance(client.backend.local, InProcessBackend)
    return client.backend.local.engine


def rollouts(codex_home: Path) -> list[Path]:
    return sorted((codex_home / "sessions").rglob("*.jsonl")) if (codex_home / "sessions").exists() else []


def loaded_in_codex(client: CodexClient) -> list[str]:
    """What Codex itself reports as loaded, over every process of the client's engine."""
    engine = engine_of(client)
    loaded: list[str] = []
    for _key, server, *_ in engine.processes():
        raw = client._core.loop.run(server.request("thread/loaded/list", {}, msgspec.Raw))
        loaded += msgspec.json.decode(raw)["data"]
    return loaded


def wait_until_unloaded(client: CodexClient, timeout: float = 20.0) -> None:
    """Until the engine forgot every thread and Codex holds none loaded (the sweeper's observable effect)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not engine_of(client).threads.loaded() and not loaded_in_codex(client):
            return
        time.sleep(0.02)
    raise AssertionError(f"still loaded: engine {engine_of(client).threads.loaded()}, codex {loaded_in_codex(client)}")


@pytest.fixture
def quick_unload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Engines made during the test unload a thread 0.3 s after its last turn (read at construction)."""
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 0.3)


def test_anonymous_conversations_leave_no_rollout_but_sessions_do(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="off", model="o4-mini") as client:
        first = client.chat.completions.create(messages=[user("a")])
        reply = first.choices[0].message.content or ""
        second = client.chat.completions.create(
            messages=[user("a"), {"role": "assistant", "content": reply}, user("b")]
        )
        assert second.choices[0].message.content == "[turn 2] Echo: b"
        assert [t.ephemeral for t in engine_of(client).threads.loaded()] == [True]
    assert rollouts(codex_home) == []  # ephemeral: Codex wrote no state for it
    with CodexClient(daemon="off", model="o4-mini", session_id="kept") as client:
        client.chat.completions.create(messages=[user("c")])
        assert [t.ephemeral for t in engine_of(client).threads.loaded()] == [False]
    assert len(rollouts(codex_home)) == 1  # a named session is persisted, so it can be resumed


def test_n_on_a_warm_conversation_gives_every_choice_the_history(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """An ephemeral thread cannot be forked: the other choices start from the same history."""
    with CodexClient(daemon="off", model="o4-mini") as client:
        first = client.chat.completions.create(messages=[user("a")]).choices[0].message.content or ""
        history = [user("a"), {"role": "assistant", "content": first}, user("b")]
        response = client.chat.completions.create(messages=history, n=3)
    assert [c.message.content for c in response.choices] == ["[turn 2] Echo: b"] * 3
    *_, r1, r2, r3 = codex_model_server.requests
    assert len({r.body["prompt_cache_key"] for r in (r1, r2, r3)}) == 3
    for r in (r1, r2, r3):
        assert r.messages()[-3:] == [("user", "a"), ("assistant", "Echo: a"), ("user", "b")]
    warm = codex_model_server.requests[0].body["prompt_cache_key"]
    assert warm in {r.body["prompt_cache_key"] for r in (r1, r2, r3)}  # the warm thread took one of the choices


def test_an_idle_session_is_unloaded_and_resumes_with_its_history(
    quick_unload: None, codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="off", model="o4-mini", session_id="s") as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        wait_until_unloaded(client)
        again = client.chat.completions.create(messages=[user("two")])
        assert again.choices[0].message.content == "[turn 2] Echo: two"
        first, second = codex_model_server.requests
        assert second.body["prompt_cache_key"] == first.body["prompt_cache_key"]  # the same thread, resumed
        assert second.messages()[-3:] == [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]
        wait_until_unloaded(client)  # a resumed thread is unloaded again once idle


def test_an_idle_anonymous_conversation_is_seeded_again_from_its_history(
    quick_unload: None, codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="off", model="o4-mini") as client:
        reply = client.chat.completions.create(messages=[user("one")]).choices[0].message.content or ""
        wait_until_unloaded(client)
        again = client.chat.completions.create(
            messages=[user("one"), {"role": "assistant", "content": reply}, user("two")]
        )
        assert again.choices[0].message.content == "[turn 2] Echo: two"
    first, second = codex_model_server.requests
    assert second.body["prompt_cache_key"] != first.body["prompt_cache_key"]  # a new thread...
    assert second.messages()[-3:] == [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]  # ...seeded


def pids(client: CodexClient) -> list[int]:
    return [server.pid for _key, server, *_ in engine_of(client).processes()]


def test_a_process_left_without_loaded_threads_is_replaced_by_a_fresh_one(
    quick_unload: None, codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Codex keeps much of an unloaded thread's memory: an emptied process starts over, still warm."""
    with CodexClient(daemon="off", model="o4-mini", session_id="s") as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        [old] = pids(client)
        deadline = time.monotonic() + 20
        while pids(client) in ([old], []) and time.monotonic() < deadline:
            time.sleep(0.02)
        [fresh] = pids(client)
        assert fresh != old
        deadline = time.monotonic() + 20
        while Path(f"/proc/{old}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not Path(f"/proc/{old}").exists(), "the replaced process was not closed"
        again = client.chat.completions.create(messages=[user("two")])
        assert again.choices[0].message.content == "[turn 2] Echo: two"  # resumed in the fresh process
        assert pids(client) == [fresh]


def test_a_process_with_a_loaded_thread_is_not_replaced(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two conversations on one process, unloading the idle one leaves the process alone."""
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 3600.0)
    with CodexClient(daemon="off", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("old")])
        client.chat.completions.create(messages=[user("recent")])
        engine = engine_of(client)
        old, recent = sorted(engine.threads.loaded(), key=lambda h: h.last_used)
        old.last_used -= 7200
        [pid] = pids(client)
        assert client._core.loop.run(engine.threads.idle.sweep()) == 1
        assert [h.thread_id for h in engine.threads.loaded()] == [recent.thread_id]
        assert pids(client) == [pid]
