"""A finished stream leaves no reference cycle behind: its objects (the events' queue, the pump that
fed it, the request) are freed when the caller drops it, not at the collector's next pass.

Each stream used to leave one: a sync stream's end was raised from the stored ``StopAsyncIteration``,
which then held the frame that held it; an async stream's pump held the events through a bound
method, and the events held the pump.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pytest

from claif_cod import AsyncCodexClient, CodexClient

pytestmark = pytest.mark.codex

MESSAGES = [{"role": "user", "content": "one two three"}]
STREAMS = frozenset(
    {"claif_cod.transport.stream_events", "claif_cod.transport.stream_objects", "claif_cod.event_stream"}
)
"""Where a stream's own objects come from (a client closed by an earlier test may become garbage
meanwhile: that is not a stream's)."""


@contextlib.contextmanager
def cyclic_garbage() -> Iterator[list[str]]:
    """The names of a stream's objects that only the collector could free, found inside the block."""
    found: list[str] = []
    gc.collect()  # what was garbage before is not counted
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found += sorted({type(o).__qualname__ for o in gc.garbage if type(o).__module__ in STREAMS})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_sync_streams_leave_no_cycle(client: CodexClient) -> None:
    client.chat.completions.create(messages=MESSAGES)  # type: ignore[call-overload]
    with cyclic_garbage() as found:
        for _ in range(3):
            assert list(client.chat.completions.create(messages=MESSAGES, stream=True))  # type: ignore[call-overload]
    assert found == []


async def test_async_streams_leave_no_cycle(aclient: AsyncCodexClient) -> None:
    await aclient.chat.completions.create(messages=MESSAGES)  # type: ignore[call-overload]
    with cyclic_garbage() as found:
        for _ in range(3):
            stream = await aclient.chat.completions.create(messages=MESSAGES, stream=True)  # type: ignore[call-overload]
            assert [chunk async for chunk in stream]
            del stream
    assert found == []
