"""What the dropped-stream tests share, in-process and through the daemon: a turn that stalls
mid-answer, and a stream cut short by its client's ``close()``."""

from __future__ import annotations

import asyncio
import sys
import threading

import openai
import pytest
from chat_messages import user
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient

STALLS = "[[stall-mid]] two words, then the model stalls"
STALLS_AFTER = 2
"""The chat chunks of :data:`STALLS` before it stalls: its two deltas."""


async def cut_by_close(client: AsyncCodexClient) -> openai.APIConnectionError:
    """The error a stream raises when its client is closed after its first chunk."""
    stream = await client.chat.completions.create(messages=[user(STALLS)], stream=True)
    await stream.__anext__()
    await client.close()
    with pytest.raises(openai.APIConnectionError) as cut:
        async for _ in stream:
            pass
    return cut.value


def cut_by_sync_close(client: CodexClient) -> openai.APIConnectionError:
    """The error a sync stream raises when its client is closed after its first chunk (as from
    another thread: ``close()`` wakes a read waiting on the stream's connection)."""
    stream = client.chat.completions.create(messages=[user(STALLS)], stream=True)
    next(iter(stream))
    client.close()
    with pytest.raises(openai.APIConnectionError) as cut:
        for _ in stream:
            pass
    return cut.value


def closed_from_another_thread(client: CodexClient, blocked_in: str) -> list[str]:
    """A stream read in one thread and closed (a "stop" button) from another once the reader waits,
    in ``blocked_in``, for a chunk the stalled model never sends: the reader's iteration ends, as it
    would after a ``close()`` of its own.  Returns what the reader saw."""
    stream = client.chat.completions.create(messages=[user(STALLS)], stream=True)
    seen: list[str] = []

    def read() -> None:
        try:
            for _ in stream:
                seen.append("chunk")
            seen.append("end")
        except BaseException as exc:  # what the reader sees, whatever it is
            seen.append(repr(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def waiting() -> bool:
        frame = sys._current_frames().get(reader.ident or 0)
        return frame is not None and frame.f_code.co_name == blocked_in and seen.count("chunk") == STALLS_AFTER

    wait_until(waiting, f"the reader to wait in {blocked_in}")
    stream.close()
    reader.join(30)
    assert not reader.is_alive(), "the reader still waits for a chunk of the closed stream"
    return seen


async def closed_from_another_task(client: AsyncCodexClient) -> list[str]:
    """An async stream read in one task and closed from another while the reader waits for a chunk
    the stalled model never sends (the reader, once it has the chunks that come, runs on until it
    waits: the closing task runs only then): the reader's iteration ends, and the close raises nothing."""
    stream = await client.chat.completions.create(messages=[user(STALLS)], stream=True)
    seen: list[str] = []
    stalled = asyncio.Event()

    async def read() -> None:
        try:
            async for _ in stream:
                seen.append("chunk")
                if len(seen) == STALLS_AFTER:
                    stalled.set()
            seen.append("end")
        except BaseException as exc:  # what the reader sees, whatever it is
            seen.append(repr(exc))
            stalled.set()

    reader = asyncio.create_task(read())
    await stalled.wait()
    await stream.close()
    await asyncio.wait_for(reader, 30)  # (it waited for ever)
    return seen
