"""A thread's inbox: messages in order, a reader woken per message, none lost to a cancelled reader."""

from __future__ import annotations

import asyncio

import pytest

from claif_cod.engine.inbox import Inbox


async def test_messages_come_out_in_order() -> None:
    inbox: Inbox[int] = Inbox()
    assert inbox.empty()
    with pytest.raises(asyncio.QueueEmpty):
        inbox.get_nowait()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert not inbox.empty()
    assert inbox.get_nowait() == 1
    assert await inbox.get() == 2
    assert inbox.empty()


async def test_a_waiting_reader_gets_the_next_message() -> None:
    inbox: Inbox[str] = Inbox()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait("a")
    assert await reader == "a"


async def test_readers_are_served_in_turn() -> None:
    inbox: Inbox[str] = Inbox()
    first, second = asyncio.ensure_future(inbox.get()), asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert await asyncio.gather(first, second) == ["a", "b"]


async def test_a_cancelled_reader_leaves_the_message_for_the_next() -> None:
    inbox: Inbox[str] = Inbox()
    gone, next_reader = asyncio.ensure_future(inbox.get()), asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    gone.cancel()  # before the message: it is skipped
    inbox.put_nowait("a")
    assert await next_reader == "a"
    woken, after = asyncio.ensure_future(inbox.get()), asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("b")  # wakes `woken`...
    woken.cancel()  # ...which is cancelled before it takes it: the wake-up passes on
    with pytest.raises(asyncio.CancelledError):
        await woken
    assert await asyncio.wait_for(after, 5) == "b"
