"""A connection whose ``hello`` is cancelled before the daemon answers (a caller's ``wait_for`` or
``task.cancel()`` as an async client opens its loop's connection) is closed at once: its reader left
running held the socket open, a connection the daemon counted, until the event loop ended, and
warned of a task destroyed pending then."""

from __future__ import annotations

import asyncio
from pathlib import Path

from claif_cod.transport.daemon_client import DaemonConnection


async def test_a_cancelled_handshake_hangs_up(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    path = run_dir / "codd.sock"
    heard = asyncio.Event()
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the hello, never answered
        heard.set()
        while await reader.read(65536):
            pass
        hung_up.set()
        writer.close()

    server = await asyncio.start_unix_server(silent, path=str(path))
    async with server:
        opening = asyncio.create_task(DaemonConnection.open(path))
        await heard.wait()
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        assert opening.cancelled()
        await asyncio.wait_for(hung_up.wait(), 10)  # never set while the reader holds the socket
