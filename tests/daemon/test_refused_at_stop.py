"""A peer that connects as the daemon stops: its refusal, cut short by the loop's end, ends quietly."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from claif_codd.config import DaemonConfig
from claif_codd.server import Daemon


def test_a_refusal_cancelled_by_the_loops_end_logs_no_traceback(tmp_path: Path) -> None:
    """Seen in codd.log after ``daemon.stopped`` (Python 3.11): "Exception in callback
    StreamReaderProtocol.connection_made...": its handler task ended cancelled."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    reported: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        daemon = Daemon(DaemonConfig(socket_path=run / "codd.sock", state_dir=tmp_path / "state"))
        await daemon.start()
        daemon.request_shutdown()  # draining: a peer is refused (answered, read for a grace, closed)
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        peer.setblocking(False)
        await asyncio.get_running_loop().sock_connect(peer, str(run / "codd.sock"))
        while not daemon._handlers:  # noqa: ASYNC110 (the accept is a loop step away; nothing to wait on)
            await asyncio.sleep(0)
        [handler] = daemon._handlers
        handler.cancel()  # as the loop's end cancels what still runs
        await asyncio.wait({handler})
        for _ in range(3):  # the task's done callbacks run
            await asyncio.sleep(0)
        peer.close()
        await daemon.shutdown()

    asyncio.run(main())
    assert reported == []
