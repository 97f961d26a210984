"""A turn's wait: the caller's deadline and the silence probe, on one timer per turn."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from claif_cod.engine.errors import TurnTimedOut
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.thread_messages import Notification, ThreadMessage, Wakeup
from claif_cod.engine.turn_wait import TurnWait


def note(method: str) -> Notification:
    return Notification(method, msgspec.Raw(b"{}"))


class Probes:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.times.append(time.monotonic())
        self.event.set()


async def test_messages_come_in_order_and_no_probe_runs_while_they_do() -> None:
    queue: Inbox[ThreadMessage] = Inbox()
    probes = Probes()
    wait = TurnWait(queue, 30.0, probes)
    wait.limit(30.0)
    queue.put_nowait(note("a"))
    queue.put_nowait(note("b"))
    assert (await wait.next()).method == "a"  # type: ignore[union-attr]
    assert (await wait.next()).method == "b"  # type: ignore[union-attr]
    asyncio.get_running_loop().call_soon(queue.put_nowait, note("c"))  # a wait that blocks
    assert (await wait.next()).method == "c"  # type: ignore[union-attr]
    wait.stop()
    assert probes.times == []


async def test_a_passed_deadline_ends_the_wait_with_the_callers_timeout() -> None:
    queue: Inbox[ThreadMessage] = Inbox()
    wait = TurnWait(queue, None, Probes())
    wait.limit(0.2)
    started = time.monotonic()
    with pytest.raises(TurnTimedOut) as raised:
        await wait.next()
    assert time.monotonic() - started >= 0.2
    assert "0.2 s deadline" in str(raised.value)
    wait.stop()


async def test_the_deadline_is_kept_while_messages_keep_coming() -> None:
    """A turn whose queue never empties still ends at its deadline."""
    queue: Inbox[ThreadMessage] = Inbox()
    wait = TurnWait(queue, None, Probes())
    wait.limit(0.05)

    async def read_forever() -> None:
        while True:
            queue.put_nowait(note("delta"))
            await wait.next()

    with pytest.raises(TurnTimedOut):
        await read_forever()
    wait.stop()


async def test_silence_runs_the_probe_and_the_wait_goes_on() -> None:
    queue: Inbox[ThreadMessage] = Inbox()
    probes = Probes()
    wait = TurnWait(queue, 0.03, probes)
    wait.limit(None)
    started = time.monotonic()
    waiting = asyncio.create_task(wait.next())
    await probes.event.wait()
    assert probes.times[0] - started >= 0.03
    queue.put_nowait(note("late"))
    assert (await waiting).method == "late"  # type: ignore[union-attr]
    wait.stop()


async def test_silence_counts_from_the_start_of_the_current_wait() -> None:
    """The timer armed by an earlier wait does not cut a later wait's silence short."""
    queue: Inbox[ThreadMessage] = Inbox()
    probes = Probes()
    wait = TurnWait(queue, 0.05, probes)
    wait.limit(None)
    first = asyncio.create_task(wait.next())  # arms the timer at its start
    await asyncio.sleep(0.03)  # a wait of 30 ms: its timer is due 20 ms into the next one
    queue.put_nowait(note("a"))
    await first
    second_started = time.monotonic()
    second = asyncio.create_task(wait.next())
    await probes.event.wait()
    assert probes.times[0] - second_started >= 0.05
    queue.put_nowait(note("b"))
    await second
    wait.stop()


async def test_a_wakeup_left_behind_a_message_is_skipped_without_a_probe() -> None:
    queue: Inbox[ThreadMessage] = Inbox()
    probes = Probes()
    wait = TurnWait(queue, 30.0, probes)
    wait.limit(None)
    queue.put_nowait(Wakeup())
    queue.put_nowait(note("a"))
    assert (await wait.next()).method == "a"  # type: ignore[union-attr]
    assert probes.times == []
    wait.stop()


async def test_with_a_gap_each_message_moves_the_deadline() -> None:
    """A stream's timeout: the turn may run past it while messages keep coming, and ends once none
    comes for that long."""
    queue: Inbox[ThreadMessage] = Inbox()
    wait = TurnWait(queue, None, Probes())
    wait.limit(0.5, gap=0.5)
    started = time.monotonic()
    for _ in range(7):  # 7 x 0.1 s: past the first 0.5 s, never 0.5 s without a message
        asyncio.get_running_loop().call_later(0.1, queue.put_nowait, note("delta"))
        assert (await wait.next()).method == "delta"  # type: ignore[union-attr]
    assert time.monotonic() - started > 0.5
    with pytest.raises(TurnTimedOut) as raised:
        await wait.next()
    assert raised.value.between_events and "no event for 0.5 s" in str(raised.value)
    wait.stop()
