"""A stream's event put while its reader waits is handed over: the engine loop goes on only once the
reader, in its thread or on its event loop, has the event (or the wait timed out)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Iterator

import httpx2
import pytest
from logged_locks import log_locks

from claif_cod.transport.loop_thread import HandOver, LoopThread
from claif_cod.transport.stream_events import AsyncEvents, SyncEvents

REQUEST = httpx2.Request("POST", "http://codex.invalid/v1/responses")


@pytest.fixture
def engine_loop() -> Iterator[LoopThread]:
    loop = LoopThread(name="test-engine")
    yield loop
    loop.stop()


async def _events(reader_waits: threading.Event | None) -> AsyncGenerator[bytes, None]:
    """One event, once the reader waits for it (None: at once), then the end."""
    if reader_waits is not None:
        await asyncio.to_thread(reader_waits.wait, 10)
    yield b"data: one\n\n"


async def _sync_events(reader_waits: threading.Event | None) -> SyncEvents:
    return SyncEvents(REQUEST).start(_events(reader_waits))


async def _nothing() -> None:
    pass


def test_an_event_for_a_waiting_reader_holds_the_engine_loop_until_the_reader_has_it(
    engine_loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader_waits = threading.Event()
    events = engine_loop.run(_sync_events(reader_waits))
    log = log_locks(monkeypatch, "waiting", made=reader_waits)
    assert list(events) == [b"data: one\n\n"]
    engine_loop.run(_nothing())  # the loop has gone on
    reader = threading.current_thread().name
    assert log[:2] == [(reader, "waiting released"), ("test-engine", "waiting acquired")]


def test_an_event_put_before_the_reader_asks_holds_nothing(
    engine_loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = engine_loop.run(_sync_events(None))
    engine_loop.run(_nothing())  # the pump's first step came before it: the event is there
    log = log_locks(monkeypatch, "waiting")
    assert next(iter(events)) == b"data: one\n\n"
    assert log == []


def test_an_event_for_a_reader_waiting_on_its_loop_holds_the_engine_loop_until_it_runs(
    engine_loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader_waits, handing_over = threading.Event(), threading.Event()
    log = log_locks(monkeypatch, "waiting", made=reader_waits)
    hand_over = HandOver.hand_over

    def signalled(self: HandOver) -> None:
        handing_over.set()
        hand_over(self)

    monkeypatch.setattr(HandOver, "hand_over", signalled)

    async def events(caller: asyncio.AbstractEventLoop) -> AsyncGenerator[bytes, None]:
        # The event reaches the reader's loop by a write to its wake-up pipe, which lets go of the GIL
        # before the engine loop's hand-over: the reader could take the event first, and then there is
        # nothing to wait for. Its loop is held until the engine loop hands over, as a busy one would be.
        async for event in _events(reader_waits):
            caller.call_soon_threadsafe(handing_over.wait, 10)
            yield event

    async def made(caller: asyncio.AbstractEventLoop) -> AsyncEvents:
        return AsyncEvents(caller, REQUEST).start(events(caller))

    async def read() -> list[bytes]:
        events = await engine_loop.run_async(made(asyncio.get_running_loop()))
        read = [event async for event in events]
        await engine_loop.run_async(_nothing())  # the loop has gone on
        return read

    assert asyncio.run(read()) == [b"data: one\n\n"]
    reader = threading.current_thread().name
    assert log[:2] == [(reader, "waiting released"), ("test-engine", "waiting acquired")]
