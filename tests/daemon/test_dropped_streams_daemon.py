"""Through the daemon, as in-process (tests/integration/test_dropped_streams.py): a stream dropped
unread and unclosed stops its request once the garbage collector takes it, from a sync caller's
own connection and from an async caller's loop's own connection alike."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from chat_messages import user
from daemon_process import DaemonProcess
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient

pytestmark = pytest.mark.codex

STALLS = "[[stall-mid]] two words, then the model stalls"


def turns_end(daemon: DaemonProcess) -> None:
    # (a stream is a cycle with its generator: it goes at a cyclic collection)
    wait_until(lambda: gc.collect() >= 0 and daemon.status().turns_in_flight == 0, "the daemon to stop the turn")


def test_a_sync_stream_dropped_unread_stops_its_request(daemon: DaemonProcess, workdir: Path) -> None:
    with CodexClient(daemon="require", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("first: the caller's own connection from the next on")])
        stream = client.chat.completions.create(messages=[user(STALLS)], stream=True)
        del stream
        turns_end(daemon)


async def test_an_async_stream_dropped_unread_stops_its_request(daemon: DaemonProcess, workdir: Path) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini") as client:
        for n in range(2):  # the loop's own connection, from its second request on
            await client.chat.completions.create(messages=[user(f"warm {n}")])
        stream = await client.responses.create(input=STALLS, stream=True)
        del stream
        await asyncio.to_thread(turns_end, daemon)
