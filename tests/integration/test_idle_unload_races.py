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
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.threads import Threads
from claif_cod.engine.turns import TurnOptions
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


def test_continuations_resuming_one_unloaded_thread_at_once_share_its_resume(
    never_on_its_own: None,
    codex_home: Path,
    workdir: Path,
    codex_model_server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two requests continue a stored response whose thread the sweep unloaded (two branches of it,
    sent together): each sent thread/resume and made a handle of its own for the one Codex thread,
    with a lock of its own, so that the table's handle could take a turn while the other ran one
    (whose events the second turn then took: it hung until its deadline)."""
    request, resume = AppServer.request, Threads.resume
    second_asks = asyncio.Event()
    resumes: list[str] = []

    async def first_answer_held(self: AppServer, method: str, params: Any, *args: Any, **kw: Any) -> Any:
        if method == "thread/resume":
            resumes.append(params.thread_id)
            if len(resumes) == 1:
                await second_asks.wait()  # the thread is not loaded yet when the second request asks for it
        return await request(self, method, params, *args, **kw)

    async def counted(self: Threads, *args: Any, **kw: Any) -> ThreadHandle:
        asked.append(True)
        if len(asked) == 2:
            second_asks.set()
        return await resume(self, *args, **kw)

    asked: list[bool] = []
    monkeypatch.setattr(AppServer, "request", first_answer_held)
    monkeypatch.setattr(Threads, "resume", counted)
    with CodexClient(daemon="off", model="o4-mini", timeout=10) as client:
        first = client.responses.create(input="one")
        engine = engine_of(client)
        [handle] = engine.threads.loaded()
        handle.last_used -= 7200
        assert client._core.loop.run(engine.threads.idle.sweep()) == 1

        async def both() -> list[ThreadHandle]:
            ask = engine.threads.resume(handle.key, None, handle.thread_id)
            return list(await asyncio.gather(ask, engine.threads.resume(handle.key, None, handle.thread_id)))

        one, two = client._core.loop.run(both())
        assert one is two and resumes == [handle.thread_id]
        assert engine.threads.loaded() == [one]
        again = client.responses.create(previous_response_id=first.id, input="two")
        assert again.output_text == "[turn 2] Echo: two"


def test_a_thread_a_request_holds_while_the_sweep_unloads_it_is_resumed_as_that_handle(
    never_on_its_own: None,
    codex_home: Path,
    workdir: Path,
    codex_model_server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request that looked a stored response's thread up just before the sweep unloaded it resumes
    that handle when its turn starts; a continuation that came once Codex had closed the thread made
    a second handle for it (with a lock of its own: two turns could run on the thread at once). And
    requests that need that handle loaded at once sent a thread/resume each."""
    request = AppServer.request
    resumes: list[str] = []

    async def counted(self: AppServer, method: str, params: Any, *args: Any, **kw: Any) -> Any:
        if method == "thread/resume":
            resumes.append(params.thread_id)
        return await request(self, method, params, *args, **kw)

    monkeypatch.setattr(AppServer, "request", counted)
    with CodexClient(daemon="off", model="o4-mini", timeout=10) as client:
        first = client.responses.create(input="one")
        engine = engine_of(client)
        [held] = engine.threads.loaded()  # (as a request that has looked it up holds it)
        held.last_used -= 7200
        assert client._core.loop.run(engine.threads.idle.sweep()) == 1
        assert engine.threads.idle.leaving(held.thread_id) is None  # Codex has closed it

        async def both() -> ThreadHandle:  # a continuation comes as the holder's turn starts
            ask = engine.threads.resume(held.key, None, held.thread_id)
            resumed, _ = await asyncio.gather(ask, engine.threads.ensure_loaded(held))
            return resumed

        assert client._core.loop.run(both()) is held and engine.threads.loaded() == [held]
        assert resumes == [held.thread_id]
        again = client.responses.create(previous_response_id=first.id, input="two")
        assert again.output_text == "[turn 2] Echo: two"
