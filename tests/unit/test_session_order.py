"""A named session's line (claif_cod.engine.session_order): turns start in the order requests arrived."""

from __future__ import annotations

import asyncio

from claif_cod.engine.session_order import SessionOrder


async def test_each_waits_for_the_ones_before_it_and_sessions_do_not_wait_for_each_other() -> None:
    order = SessionOrder()
    first, second, other = order.ticket("a"), order.ticket("a"), order.ticket("b")
    await first.turn()
    await other.turn()  # another session's line
    waiting = asyncio.ensure_future(second.turn())
    await asyncio.sleep(0)
    assert not waiting.done()
    first.done()
    await waiting


async def test_one_that_gives_up_in_the_line_lets_the_next_go_only_after_those_before_it() -> None:
    order = SessionOrder()
    first, second, third = order.ticket("a"), order.ticket("a"), order.ticket("a")
    waiting = asyncio.ensure_future(second.turn())
    await asyncio.sleep(0)
    waiting.cancel()  # the second request's deadline, before its turn
    second.done()
    third_turn = asyncio.ensure_future(third.turn())
    await asyncio.sleep(0)
    assert not third_turn.done()  # the first has not started its turn yet
    first.done()
    first.done()  # again: no effect
    await third_turn


async def test_the_line_is_forgotten_once_empty() -> None:
    order = SessionOrder()
    ticket = order.ticket("a")
    ticket.done()
    await asyncio.sleep(0)  # (a future's callbacks run on the next loop step)
    assert order._last == {}
    await order.ticket("a").turn()  # a new line: nobody before it
