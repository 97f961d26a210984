"""A caller that leaves after Codex has its ``turn/start``, before Codex named the turn: Codex starts
the turn anyway, so the engine interrupts it once named and keeps its thread until Codex confirms.
Before, the thread was released at once with the turn still running at the model, and a named
session's next turn was sent to a thread that still had one.

Codex 0.163 may also refuse an interrupt that comes right after ``turn/start`` ("no active turn to
interrupt": the turn is not active yet), seen under load; the engine then asks again. Before, the
refusal was taken as an answer: the turn ran on at the model, and after the interrupt's grace its
thread was retired as broken."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from chat_messages import user
from test_early_dispatch import interrupted
from waiting import wait_until

from claif_cod import AsyncCodexClient
from claif_cod.engine import wire
from claif_cod.engine.appserver import AppServer
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


class HeldAnswers:
    """Codex's answers to ``turn/start`` kept from the engine while ``holding``; every request's method;
    the next ``refusals`` interrupts answered as Codex refuses one for a turn not active yet."""

    def __init__(self, dispatch: Any) -> None:
        self._dispatch = dispatch
        self.holding = False
        self.refusals = 0
        self.methods: list[str] = []
        self._ids: set[int] = set()
        self._held: list[tuple[AppServer, bytes]] = []
        self._lock = threading.Lock()

    def sent(self, message: object) -> None:
        if isinstance(message, wire.OutgoingRequest):
            self.methods.append(message.method)
            if self.holding and message.method == "turn/start":
                self._ids.add(message.id)

    def keep(self, server: AppServer, line: bytes) -> bool:
        reply = msgspec.json.decode(line)
        if isinstance(reply, dict) and "method" not in reply and reply.get("id") in self._ids:
            with self._lock:
                self._held.append((server, line))
            return True
        return False

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def release(self) -> None:
        """Hand the held answers to the engine (on its loop)."""
        with self._lock:
            held, self._held = self._held, []
        self._ids.clear()
        for server, line in held:
            self._dispatch(server, line)


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> HeldAnswers:
    write, dispatch = AppServer._write, AppServer._dispatch
    answers = HeldAnswers(dispatch)

    async def recorded_write(self: AppServer, message: object) -> None:
        answers.sent(message)
        if isinstance(message, wire.OutgoingRequest) and message.method == "turn/interrupt" and answers.refusals:
            answers.refusals -= 1  # never reaches Codex: answered as Codex 0.163 answers one too early
            error = {"code": -32600, "message": "no active turn to interrupt"}
            dispatch(self, msgspec.json.encode({"id": message.id, "error": error}))
            return
        await write(self, message)

    def held_dispatch(self: AppServer, line: bytes) -> None:
        if not answers.keep(self, line):
            dispatch(self, line)

    monkeypatch.setattr(AppServer, "_write", recorded_write)
    monkeypatch.setattr(AppServer, "_dispatch", held_dispatch)
    return answers


async def test_a_session_turn_cancelled_before_codex_named_it_is_interrupted_before_the_next(
    codex_home: Path, workdir: Path, answers: HeldAnswers, codex_model_server: ModelServer
) -> None:
    async with AsyncCodexClient(daemon="off", model="o4-mini", session_id="left") as client:
        first = await client.chat.completions.create(messages=[user("one")])
        assert first.choices[0].message.content == "Echo: one"
        answers.holding = True
        waiting = asyncio.create_task(client.chat.completions.create(messages=[user("[[stall]] two")]))
        await asyncio.to_thread(wait_until, lambda: answers.held == 1, "Codex's answer to turn/start")
        # The turn is at the model, so Codex has its message: the session's thread must drop it.
        await asyncio.to_thread(codex_model_server.wait_for_requests, 2, 20)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert "turn/interrupt" not in answers.methods  # Codex has not named the turn to the engine yet
        client._core.loop.loop.call_soon_threadsafe(answers.release)
        await asyncio.to_thread(wait_until, lambda: "turn/interrupt" in answers.methods, "the turn's interrupt")
        interrupted(client)
        answers.holding = False
        again = await client.chat.completions.create(messages=[user("three")])
    assert again.choices[0].message.content == "[turn 2] Echo: three"  # the cancelled turn left no trace
    assert codex_model_server.requests[-1].user_texts() == ["one", "three"]


async def test_an_interrupt_codex_refuses_as_too_early_is_asked_again(
    codex_home: Path, workdir: Path, answers: HeldAnswers, codex_model_server: ModelServer
) -> None:
    """The turn ends interrupted, promptly and on its thread, which the session's next turn continues."""
    async with AsyncCodexClient(daemon="off", model="o4-mini", session_id="early") as client:
        await client.chat.completions.create(messages=[user("one")])
        answers.refusals = 2
        waiting = asyncio.create_task(client.chat.completions.create(messages=[user("[[stall]] two")]))
        await asyncio.to_thread(codex_model_server.wait_for_requests, 2, 20)  # at the model: it has the message
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        interrupted(client)  # within the interrupt's grace (5 s), not after it
        assert answers.methods.count("turn/interrupt") == 3  # refused twice, then sent to Codex
        again = await client.chat.completions.create(messages=[user("three")])
    assert again.choices[0].message.content == "[turn 2] Echo: three"  # the cancelled turn left no trace
