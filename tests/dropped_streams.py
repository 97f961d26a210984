"""What the dropped-stream tests share, in-process and through the daemon: a turn that stalls
mid-answer, and a stream cut short by its client's ``close()``."""

from __future__ import annotations

import sys
import threading

import openai
import pytest
from chat_messages import user
from waiting import wait_until

from claif_cod import AsyncCodexClient, CodexClient

STALLS = "[[stall-mid]] two words, then the model stalls"


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
        return frame is not None and frame.f_code.co_name == blocked_in and "chunk" in seen

    wait_until(waiting, f"the reader to wait in {blocked_in}")
    stream.close()
    reader.join(30)
    assert not reader.is_alive(), "the reader still waits for a chunk of the closed stream"
    return seen
