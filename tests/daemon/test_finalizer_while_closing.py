"""A stream dropped unfinished is a cycle with its generator: the collector takes it at some later
allocation, in whichever thread allocates, and its finalizer lets its connection go (the daemon stops
the request).  That thread may be the one closing the client, which goes through the connections in
flight to wake them: the finalizer took one out of that set as it was gone through, and ``close()``
raised ``RuntimeError: Set changed size during iteration``, leaving the engine loop running."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from chat_messages import user
from daemon_process import DaemonProcess
from dropped_streams import STALLS

from claif_cod import CodexClient
from claif_cod.transport.blocking_connection import BlockingConnection

pytestmark = pytest.mark.codex


def test_a_dropped_streams_finalizer_run_as_the_client_closes(
    daemon: DaemonProcess, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = CodexClient(daemon="require", model="o4-mini")
    client.chat.completions.create(messages=[user("first: the caller's own connection from the next on")])
    streams: list[Any] = [client.chat.completions.create(messages=[user(STALLS)], stream=True)]
    next(iter(streams[0]))
    wake = BlockingConnection.wake

    def waking(conn: BlockingConnection) -> None:
        streams.clear()  # the stream's last reference goes: the collector finds it at wake's allocation
        gc.collect()
        wake(conn)

    monkeypatch.setattr(BlockingConnection, "wake", waking)
    client.close()
    assert streams == []
    engine = client._core._loop
    assert engine is not None and not engine.alive, "the engine loop runs on after close()"
