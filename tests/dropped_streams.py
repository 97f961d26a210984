"""What the dropped-stream tests share, in-process and through the daemon: a turn that stalls
mid-answer, and a stream cut short by its client's ``close()``."""

from __future__ import annotations

import openai
import pytest
from chat_messages import user

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
