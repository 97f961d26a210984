"""A daemon whose answer to ``hello`` this client cannot use: of another release (it refuses our
protocol version, or answers with another), or answering nonsense. ``require`` says which, ``auto``
runs Codex in-process, and warns once when the daemon wants a restart."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest

from claif_cod.protocol import PROTOCOL_VERSION, FrameDecoder, encode_frame
from claif_cod.transport.blocking_connection import BlockingConnection
from claif_cod.transport.daemon_client import DaemonConnection
from claif_cod.transport.daemon_unusable import DaemonMismatch, DaemonUnavailable
from claif_cod.transport.select import SelectingBackend

HELLO = {"package_version": "0.0.1", "daemon_pid": 1, "capabilities": [], "max_frame_size": 1 << 24}
Answer = Callable[[object], dict[str, object]]
ANSWERS: dict[str, Answer] = {
    "refuses our version": lambda i: {
        "jsonrpc": "2.0",
        "id": i,
        "error": {"code": -32003, "message": "protocol 9 only"},
    },
    "speaks another": lambda i: {
        "jsonrpc": "2.0",
        "id": i,
        "result": {**HELLO, "protocol_version": PROTOCOL_VERSION + 1},
    },
    "answers nonsense": lambda i: {"jsonrpc": "2.0", "id": i, "result": {"protocol_version": PROTOCOL_VERSION}},
}


@pytest.fixture(params=list(ANSWERS))
async def daemon(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    path = run_dir / "codd.sock"
    answer = ANSWERS[request.param]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        while not (frames := decoder.feed(await reader.read(65536))):
            pass
        hello = msgspec.json.decode(frames[0])
        writer.write(encode_frame(msgspec.json.encode(answer(hello["id"]))))
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_unix_server(serve, path=str(path))
    async with server:
        yield request.param, path


async def test_an_unusable_handshake_is_a_clear_failure_of_the_connection(daemon: tuple[str, Path]) -> None:
    kind, path = daemon
    with pytest.raises(DaemonUnavailable) as failed:
        await DaemonConnection.open(path)
    if kind == "answers nonsense":
        assert not isinstance(failed.value, DaemonMismatch)
        assert "answered the handshake wrongly: result is not a valid HelloResult" in str(failed.value)
    else:
        assert isinstance(failed.value, DaemonMismatch)
        assert "is of another release of claif_cod" in str(failed.value) and "claif-codd stop" in str(failed.value)
    with pytest.raises(DaemonUnavailable):
        await asyncio.to_thread(BlockingConnection.open, path, "test")


async def test_auto_runs_in_process_and_warns_once_of_a_daemon_to_restart(
    daemon: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, path = daemon
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(path))
    monkeypatch.delenv("CLAIF_COD_AUTOSTART", raising=False)
    backend = SelectingBackend("auto")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(2):
            assert await backend.current() is backend.local
    said = [str(w.message) for w in caught]
    if kind == "answers nonsense":
        assert said == []
    else:
        assert len(said) == 1 and "restart it" in said[0] and "Codex runs in this process" in said[0]
    assert backend.local is not None
    await backend.local.aclose()
