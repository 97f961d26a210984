"""An async stream kept unread past the end of its event loop (``asyncio.run`` per call, the stream
held by a traceback or a cycle the collector has not reached yet): what its turn hands over next has
nowhere to go.  That stops the stream's pump on the engine loop, and its turn, quietly: the pump's task
used to end with ``RuntimeError: Event loop is closed``, printed as "Task exception was never
retrieved" with a three-part traceback (at exit, or whenever the collector took it)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest
from chat_messages import user
from dropped_streams import STALLS

from claif_cod import AsyncCodexClient

pytestmark = pytest.mark.codex

HANG_GUARD_S = 60.0
"""Not a timing: a pump still running after this long never stops."""


async def _kept_unread(client: AsyncCodexClient, kept: list[Any]) -> None:
    kept.append(await client.chat.completions.create(messages=[user(STALLS)], stream=True))


def test_a_stream_whose_loop_ended_stops_quietly(codex_home: Path, workdir: Path) -> None:
    client = AsyncCodexClient(daemon="off", model="o4-mini")
    kept: list[Any] = []
    asyncio.run(_kept_unread(client, kept))  # its loop is closed now; the turn stalls on
    engine = client._core.loop.loop
    reported: list[dict[str, Any]] = []
    engine.set_exception_handler(lambda loop, context: reported.append(context))
    pump = kept[0].response.stream._pump
    asyncio.run(client.close())  # the turn fails as its Codex stops: the pump hands that to the closed loop
    assert pump.closed.wait(HANG_GUARD_S)
    task = pump._task
    del pump
    kept.clear()
    gc.collect()
    assert task.done()
    del task  # what the engine loop reports of it, it reports now
    gc.collect()
    assert [context.get("message") for context in reported] == []
