"""``EventPump``: an HTTP stream's events read ahead of its client, within a cap, closed once done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from claif_cod.openai_compat.errors import APIFailure
from claif_codd.http.event_pump import EventPump


class Stream:
    """An event stream whose closing is seen, and which can be held at ``hold`` before ``after``."""

    def __init__(self, events: list[bytes], after: list[bytes] = (), cleanup_wait: bool = False) -> None:  # type: ignore[assignment]
        self.events, self.after = events, after
        self.hold = asyncio.Event()
        self.closed = asyncio.Event()
        self.cleanup_wait = cleanup_wait

    async def run(self) -> AsyncGenerator[bytes, None]:
        try:
            for event in self.events:
                yield event
            await self.hold.wait()
            for event in self.after:
                yield event
        finally:
            if self.cleanup_wait:  # a turn's interrupt takes a while
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            self.closed.set()


async def test_events_come_in_order_and_the_stream_is_closed_after_the_last() -> None:
    stream = Stream([b"a", b"b"])
    stream.hold.set()
    pump = EventPump(stream.run(), 100, lambda _: True)
    assert [await pump.next(), await pump.next(), await pump.next()] == [b"a", b"b", None]
    await pump.stop()
    assert stream.closed.is_set()


async def test_a_burst_past_the_cap_is_kept_while_the_client_is_not_behind() -> None:
    stream = Stream([b"x" * 300] * 6)
    stream.hold.set()
    asked: list[int] = []
    pump = EventPump(stream.run(), 1000, lambda pending: asked.append(pending) or False)
    taken = [event async for event in _drain(pump)]
    assert len(taken) == 6 and not pump.dropped
    assert asked  # the cap was passed, and the client found not behind


async def test_a_client_behind_past_the_cap_is_dropped_and_the_stream_closed() -> None:
    stream = Stream([b"x" * 300] * 6, after=[b"never"])
    pump = EventPump(stream.run(), 1000, lambda pending: True)
    await asyncio.wait_for(stream.closed.wait(), 5)
    assert pump.dropped
    assert await pump.next() is None  # nothing more for a dropped client


async def test_a_failure_is_raised_after_the_events_before_it() -> None:
    async def failing() -> AsyncGenerator[bytes, None]:
        yield b"a"
        raise APIFailure.bad_request("broke")

    pump = EventPump(failing(), 100, lambda _: True)
    assert await pump.next() == b"a"
    with pytest.raises(APIFailure, match="broke"):
        await pump.next()


async def test_a_cancellation_inside_the_stream_is_a_failure_not_an_end() -> None:
    async def cancelled_inside() -> AsyncGenerator[bytes, None]:
        yield b"a"
        raise asyncio.CancelledError

    pump = EventPump(cancelled_inside(), 100, lambda _: True)
    assert await pump.next() == b"a"
    with pytest.raises(APIFailure, match="cut short"):
        await pump.next()


async def test_stop_keeps_what_was_read_for_the_caller() -> None:
    stream = Stream([b"a", b"b"], after=[b"c"])
    pump = EventPump(stream.run(), 100, lambda _: True)
    assert await pump.next() == b"a"
    await asyncio.sleep(0)  # the pump reads b"b" and waits at the hold
    await pump.stop()
    assert stream.closed.is_set()
    assert pump.rest() == [b"b"]


async def test_stop_cancelled_again_waits_for_the_stream_to_close_and_then_raises() -> None:
    """The handler cancelled a second time (the client left, then the drain) while the turn is being
    given up: the stream is closed before the cancellation goes on, never left running."""
    stream = Stream([b"a"], cleanup_wait=True)
    pump = EventPump(stream.run(), 100, lambda _: True)
    assert await pump.next() == b"a"
    stopping = asyncio.get_running_loop().create_task(pump.stop())
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stream.closed.is_set()


async def _drain(pump: EventPump) -> AsyncGenerator[bytes, None]:
    while (event := await pump.next()) is not None:
        yield event
