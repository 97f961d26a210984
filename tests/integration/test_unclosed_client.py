"""A client dropped without ``close()`` releases its loop and its Codex children once collected.

Scripts, langchain and the Agents SDK drop clients (1-6 per script) and never close them. The
exit of the interpreter is covered by ``test_api_guide_exit.py``; here the client goes away
while the program runs on, and everything it started must go with it.
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import pytest
from chat_messages import user

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.transport.loop_thread import LoopThread

pytestmark = pytest.mark.codex


def gone(pid: int) -> bool:
    """Exited and reaped: a zombie would still hold its /proc entry."""
    return not Path(f"/proc/{pid}").exists() if Path("/proc/self").exists() else _kill0_fails(pid)


def _kill0_fails(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def used_client() -> tuple[LoopThread, list[int]]:
    """A client that served a request and is then dropped: its loop and its Codex pids."""
    client = CodexClient(daemon="off")
    client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert client.backend is not None and client.backend.local is not None
    pids = [server.pid for _, server, *_ in client.backend.local.engine.processes()]
    loop = client._core.loop
    return loop, pids


def test_a_dropped_sync_client_ends_its_loop_and_its_codex(codex_home: Path, workdir: Path) -> None:
    loop, pids = used_client()
    assert pids and loop.alive
    gc.collect()  # openai clients are reference cycles: the cycle collector is what frees them
    loop.join(timeout=30)
    assert not loop.alive
    assert loop.loop.is_closed()
    assert all(gone(pid) for pid in pids), pids


def test_a_dropped_async_client_ends_its_loop_and_its_codex(codex_home: Path, workdir: Path) -> None:
    async def use() -> tuple[LoopThread, list[int]]:
        client = AsyncCodexClient(daemon="off")
        await client.chat.completions.create(model="o4-mini", messages=[user("hi")])
        assert client.backend is not None and client.backend.local is not None
        return client._core.loop, [server.pid for _, server, *_ in client.backend.local.engine.processes()]

    loop, pids = asyncio.run(use())
    assert pids and loop.alive
    gc.collect()
    loop.join(timeout=30)
    assert not loop.alive
    assert all(gone(pid) for pid in pids), pids


def test_a_client_still_referenced_keeps_working(codex_home: Path, workdir: Path) -> None:
    """Collection of other objects must not end a live client's loop."""
    with CodexClient(daemon="off") as client:
        client.chat.completions.create(model="o4-mini", messages=[user("one")])
        gc.collect()
        reply = client.chat.completions.create(model="o4-mini", messages=[user("two")])
        assert reply.choices[0].message.content == "Echo: two"
