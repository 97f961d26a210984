"""Named sessions in the engine itself (no daemon)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai
import pytest

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.engine.conversations import Message
from claif_cod.engine.errors import SessionStoreFailed
from claif_cod.engine.sessions import MemorySessionStore, SessionRecord, SessionStore
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_a_session_bound_to_a_thread_that_never_ran_a_turn_starts_afresh(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Codex writes a rollout only at a thread's first turn: a crash right after binding leaves
    nothing to resume, and the session must not stay broken."""
    with CodexClient(daemon="off", session_id="fresh") as client:
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "one"}])
        assert client.backend is not None and client.backend.local is not None
        sessions = client.backend.local.engine.sessions
        record = named(sessions, "fresh")
        assert record is not None
        sessions.put(dataclasses.replace(record, thread_id="00000000-0000-7000-8000-000000000000", turns=0))
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "two"}])
    assert reply.choices[0].message.content == "[turn 2] Echo: two"  # seeded with the history the store kept
    record = named(sessions, "fresh")
    assert record is not None and record.thread_id != "00000000-0000-7000-8000-000000000000"


def named(store: SessionStore, session_id: str) -> SessionRecord | None:
    """The session's record, in whichever Codex home (these tests use one)."""
    return next((r for r in store.all() if r.session_id == session_id), None)


class FlakyStore(MemorySessionStore):
    """A store whose writes fail while ``broken`` (a read-only directory, a full disk)."""

    broken = False

    def put(self, record: SessionRecord, messages: Sequence[Message] = ()) -> None:
        if self.broken:
            raise SessionStoreFailed("/state/sessions.db", "attempt to write a readonly database")
        super().put(record, messages)


def flaky_store(client: CodexClient) -> FlakyStore:
    """Swap the client's engine onto a FlakyStore holding the same records."""
    assert client.backend is not None and client.backend.local is not None
    engine = client.backend.local.engine
    store = FlakyStore()
    for record in engine.sessions.all():
        store.put(record, engine.sessions.history(record.session_id, record.codex_home))
    engine.sessions = store
    return store


def test_a_session_turn_the_store_cannot_record_is_refused_before_it_runs(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """A failed request must not have happened: no model request, nothing added to the thread."""
    with CodexClient(daemon="off", session_id="kept", max_retries=0) as client:
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "one"}])
        store = flaky_store(client)
        asked = len(codex_model_server.requests)
        store.broken = True
        with pytest.raises(openai.InternalServerError, match=r"/state/sessions\.db cannot be written") as info:
            client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "lost"}])
        assert info.value.status_code == 503
        assert len(codex_model_server.requests) == asked  # the turn never reached the model
        store.broken = False
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "two"}])
    assert reply.choices[0].message.content == "[turn 2] Echo: two"  # "lost" is not in the thread
    record = named(store, "kept")
    assert record is not None and record.turns == 2


def test_a_store_failing_after_the_turn_still_delivers_the_answer_and_saves_later(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    with CodexClient(daemon="off", session_id="late", max_retries=0) as client:
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "one"}])
        store = flaky_store(client)
        real_put = store.put

        def fail_after_the_turn(record: SessionRecord, messages: Sequence[Message] = ()) -> None:
            if record.turns == 2:  # the write after the second turn, not the one before it
                raise SessionStoreFailed("/state/sessions.db", "database or disk is full")
            real_put(record, messages)

        store.put = fail_after_the_turn  # type: ignore[method-assign]
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "two"}])
        assert reply.choices[0].message.content == "[turn 2] Echo: two"
        assert named(store, "late").turns == 1  # type: ignore[union-attr]
        [deferred] = [r for r in caplog.records if r.msg == "engine.session_save_deferred"]
        assert deferred.reason == "database or disk is full"  # type: ignore[attr-defined]
        assert "not run" not in str(deferred.__dict__)  # it ran: its answer came back
        store.put = real_put  # type: ignore[method-assign]
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "three"}])
    assert reply.choices[0].message.content == "[turn 3] Echo: three"
    record = named(store, "late")
    assert record is not None and record.turns == 3
    texts = [m.text for m in store.history("late", record.codex_home)]
    assert texts == ["one", "Echo: one", "two", "[turn 2] Echo: two", "three", "[turn 3] Echo: three"]


@pytest.mark.parametrize("where", ["client", "call"])
@pytest.mark.parametrize("name", ["", "two\nlines", "x" * 257])
def test_a_session_name_no_listing_could_show_is_a_bad_request(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, where: str, name: str
) -> None:
    """``extra_body={"session_id": ""}`` ran without a session, silently; the others were kept as names."""
    with CodexClient(daemon="off", session_id=name if where == "client" else "mine") as client:
        extra = {"session_id": name} if where == "call" else None
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="o4-mini", messages=[{"role": "user", "content": "hi"}], extra_body=extra
            )
    assert info.value.param == "session_id"
    assert codex_model_server.requests == []


@pytest.mark.parametrize("failing", ["[[status:500]] two", "[[stall]] two"])
def test_a_turn_reported_failed_leaves_no_trace_in_the_session(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, failing: str
) -> None:
    """The model saw a failed turn's message in every later turn of the session, once per retry
    (openai retries a 500 twice): the caller was told it had not happened."""
    with CodexClient(daemon="off", session_id="kept-clean", max_retries=2, timeout=3) as client:

        def ask(text: str) -> str | None:
            reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": text}])
            return reply.choices[0].message.content

        assert ask("one") == "Echo: one"
        with pytest.raises((openai.InternalServerError, openai.APITimeoutError)):
            ask(failing)
        assert ask("three") == "[turn 2] Echo: three"  # (it was [turn 5] after three tries of the 500)
    assert codex_model_server.requests[-1].user_texts() == ["one", "three"]


async def test_a_new_sessions_messages_start_their_turns_in_the_order_they_were_sent(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """A fresh client's first requests find Codex and start its process and the session's thread,
    each taking its own time: none may start its turn before a message sent before it, streamed or
    not (each answer says which turn of the session's it was)."""
    async with AsyncCodexClient(daemon="off") as client:

        async def send(i: int) -> str:
            messages: Any = [{"role": "user", "content": f"message {i}"}]
            extra = {"session_id": "in-order"}
            if i % 2:
                stream = await client.chat.completions.create(
                    model="o4-mini", messages=messages, stream=True, extra_body=extra
                )
                return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
            reply = await client.chat.completions.create(model="o4-mini", messages=messages, extra_body=extra)
            return reply.choices[0].message.content or ""

        answers = await asyncio.gather(*(send(i) for i in range(4)))
    assert answers == ["Echo: message 0"] + [f"[turn {i + 1}] Echo: message {i}" for i in range(1, 4)]


def test_a_session_seeded_anew_keeps_the_instructions_it_started_with(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Codex keeps a session's system prompt in its rollout: a new thread seeded with the history the
    store kept (the rollout gone) must get it too, though later requests send no system message."""
    with CodexClient(daemon="off", session_id="styled") as client:
        client.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "system", "content": "Answer like a pirate."}, {"role": "user", "content": "one"}],
        )
        assert client.backend is not None and client.backend.local is not None
        sessions = client.backend.local.engine.sessions
        record = named(sessions, "styled")
        assert record is not None
        sessions.put(dataclasses.replace(record, thread_id="00000000-0000-7000-8000-000000000000"))  # no rollout
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "two"}])
        assert reply.choices[0].message.content == "[turn 2] Echo: two"
        assert "Answer like a pirate." in codex_model_server.requests[-1].developer_texts()
        # A later request's system message is not the session's (it is not sent again): not seeded.
        record = named(sessions, "styled")
        assert record is not None
        sessions.put(dataclasses.replace(record, thread_id="00000000-0000-7000-8000-000000000001"))
        client.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "system", "content": "Answer like a poet."}, {"role": "user", "content": "three"}],
        )
    developer = codex_model_server.requests[-1].developer_texts()
    assert "Answer like a pirate." in developer and "Answer like a poet." not in developer
