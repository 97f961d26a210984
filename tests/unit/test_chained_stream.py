"""A reply stream taken back before anyone read it still closes what it reads from (its turn); its first
item made ahead is read first, or taken once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from claif_cod.chained_stream import ChainedStream
from claif_cod.openai_compat.errors import translated_stream
from claif_cod.transport import early
from claif_cod.transport.backend import StreamReply


def turn(closed: list[str]) -> AsyncGenerator[str, None]:
    async def events() -> AsyncGenerator[str, None]:
        try:
            yield "first"
            yield "second"
        finally:
            closed.append("turn")

    return events()


async def framed(items: ChainedStream[str]) -> AsyncGenerator[bytes, None]:
    try:
        async for item in items:
            yield item.encode()
    finally:
        await items.aclose()


async def started_stream(closed: list[str]) -> ChainedStream[bytes]:
    """Built as the backends build one: the turn's first event awaited, then two layers around it."""
    events = turn(closed)
    first = await events.__anext__()
    chunks = translated_stream(first, events)
    return ChainedStream(framed(chunks), chunks.aclose)


async def test_an_unread_stream_closed_closes_its_turn() -> None:
    closed: list[str] = []
    stream = await started_stream(closed)
    await stream.aclose()
    assert closed == ["turn"]


async def test_a_stream_read_to_the_end_closes_its_turn_once() -> None:
    closed: list[str] = []
    stream = await started_stream(closed)
    assert [item async for item in stream] == [b"first", b"second"]
    await stream.aclose()
    assert closed == ["turn"]


async def test_the_early_dispatch_undone_closes_a_stream_it_began() -> None:
    closed: list[str] = []
    stream = await started_stream(closed)

    async def dispatched() -> StreamReply:
        return StreamReply(stream)

    task = asyncio.get_running_loop().create_task(dispatched())
    await asyncio.wait({task})
    await early._undo(task)
    assert closed == ["turn"]


async def test_a_prefetched_item_is_read_first_and_only_once() -> None:
    closed: list[str] = []
    stream = await started_stream(closed)
    await stream.prefetch()
    await stream.prefetch()  # made already: nothing more is read
    assert [item async for item in stream] == [b"first", b"second"]
    assert closed == ["turn"]


async def test_a_prefetched_item_taken_is_not_read_again() -> None:
    closed: list[str] = []
    stream = await started_stream(closed)
    await stream.prefetch()
    assert stream.take_ready() == [b"first"]
    assert stream.take_ready() == []
    assert [item async for item in stream] == [b"second"]


async def test_a_prefetched_stream_closed_unread_closes_its_turn() -> None:
    closed: list[str] = []
    stream = await started_stream(closed)
    await stream.prefetch()
    await stream.aclose()
    assert closed == ["turn"]
