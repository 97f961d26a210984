"""A thread's idle unload racing with a request for it (in-process engine, real Codex): the request
resumes the thread once Codex has closed it, and the session goes on on the same thread."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from chat_messages import user

from claif_cod import CodexClient
from claif_cod.engine import idle
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.conversations import Conversation
from claif_cod.engine.engine import Engine
from claif_cod.engine.turns import ThreadHandle, TurnOptions
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex


def engine_of(client: CodexClient) -> Engine:
    assert client.backend is not None and isinstance(client.backend.local, InProcessBackend)
    return client.backend.local.engine


@pytest.fixture
def never_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the test's own sweeps unload (it makes a thread look idle for two hours)."""
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 3600.0)


def same_thread_throughout(server: ModelServer) -> bool:
    return len({r.body["prompt_cache_key"] for r in server.requests}) == 1


def test_a_turn_that_took_its_thread_before_the_sweep_resumes_it_after_the_unsubscribe(
    never_on_its_own: None,
    codex_home: Path,
    workdir: Path,
    codex_model_server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sweep takes a thread a request has just looked up, and the request's turn takes the thread's
    lock before the unsubscribe goes out: the unsubscribe, sent after the turn resumed the thread,
    unloaded it under the session (its next turns failed: "agent loop died unexpectedly", or hung)."""
    start_turn = Engine.start_turn
    armed: list[bool] = []

    async def sweep_first(self: Engine, handle: ThreadHandle, text: str | None, options: TurnOptions, **kw: Any) -> Any:
        if armed:
            armed.clear()
            handle.last_used -= 7200  # idle for two hours, as far as the sweep can tell
            asyncio.get_running_loop().create_task(self.threads.idle.sweep())
            await asyncio.sleep(0)  # the sweep takes it now; its unsubscribe runs after this turn takes the lock
        return await start_turn(self, handle, text, options, **kw)

    monkeypatch.setattr(Engine, "start_turn", sweep_first)
    with CodexClient(daemon="off", model="o4-mini", session_id="s", timeout=10) as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        armed.append(True)
        assert client.chat.completions.create(messages=[user("two")]).choices[0].message.content == "[turn 2] Echo: two"
        assert not armed  # the sweep did run
        assert client.chat.completions.create(messages=[user("3")]).choices[0].message.content == "[turn 3] Echo: 3"
        assert client.chat.completions.create(messages=[user("4")]).choices[0].message.content == "[turn 4] Echo: 4"
    assert same_thread_throughout(codex_model_server)


def test_a_session_asked_for_while_its_thread_closes_resumes_that_thread(
    never_on_its_own: None,
    codex_home: Path,
    workdir: Path,
    codex_model_server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Codex answers the unsubscribe, then closes the thread (``thread/closed``, a few ms later) and
    refuses to resume it meanwhile ("is closing"): the session took that for a lost rollout and
    was re-seeded on a new thread."""
    request = AppServer.request
    asked: list[asyncio.Task[tuple[ThreadHandle, bool]]] = []

    async def then_ask_for_the_session(self: AppServer, method: str, params: Any, *args: Any, **kw: Any) -> Any:
        result = await request(self, method, params, *args, **kw)
        if method == "thread/unsubscribe" and not asked:  # the session's next request comes in now
            engine = engine_of(client)
            conversation = Conversation(instructions=None, history=(), prompt="two")
            key = next(iter(h.key for h in [*engine.threads.loaded(), *handles]))
            asked.append(asyncio.ensure_future(engine.named.thread("s", key, None, conversation, model="o4-mini")))
            await asyncio.sleep(0)
        return result

    monkeypatch.setattr(AppServer, "request", then_ask_for_the_session)
    with CodexClient(daemon="off", model="o4-mini", session_id="s", timeout=10) as client:
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        engine = engine_of(client)
        handles = engine.threads.loaded()
        [handle] = handles
        handle.last_used -= 7200

        async def sweep_and_wait() -> tuple[ThreadHandle, bool]:
            assert await engine.threads.idle.sweep() == 1
            return await asyncio.wait_for(asyncio.shield(asked[0]), 20)

        resumed, continued = client._core.loop.run(sweep_and_wait())
        assert (resumed.thread_id, continued) == (handle.thread_id, True)  # not re-seeded on a new thread
        assert client.chat.completions.create(messages=[user("two")]).choices[0].message.content == "[turn 2] Echo: two"
    assert same_thread_throughout(codex_model_server)
    assert "engine.session_reseeded" not in caplog.text
