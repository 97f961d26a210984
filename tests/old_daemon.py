"""A fake claif-codd of an older release (claif_cod 0.2.9, the client's protocol), for what a client
does with a daemon started before claif_cod was upgraded: it answers ``hello`` naming the
capabilities it is given, ``daemon.status``, and every other request as a daemon that does not
know its method, recording the methods it was sent."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from claif_cod.protocol import PROTOCOL_VERSION, FrameDecoder, encode_frame

VERSION = "0.2.9"
PID = 4242


class OldDaemon(socketserver.ThreadingUnixStreamServer):
    """Serves a socket as claif-codd 0.2.9 naming ``capabilities`` (see the module's docstring)."""

    daemon_threads = True

    def __init__(self, path: Path, capabilities: list[str]) -> None:
        self.methods: list[str] = []
        hello = {
            "protocol_version": PROTOCOL_VERSION,
            "package_version": VERSION,
            "daemon_pid": PID,
            "capabilities": capabilities,
            "max_frame_size": 1 << 24,
        }
        status = {
            "pid": PID,
            "package_version": VERSION,
            "protocol_version": PROTOCOL_VERSION,
            "uptime_s": 1.0,
            "socket": str(path),
            "processes": [],
            "sessions": 0,
            "connections": 1,
            "turns_in_flight": 0,
        }
        self.answers: dict[str, object] = {"hello": hello, "daemon.status": status}
        super().__init__(str(path), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: OldDaemon

    def handle(self) -> None:
        decoder = FrameDecoder()
        while data := self.request.recv(65536):
            for body in decoder.feed(data):
                message = msgspec.json.decode(body)
                if "id" not in message:
                    continue  # a notification ($/cancel)
                if message["method"] in self.server.answers:
                    result = self.server.answers[message["method"]]
                    reply: dict[str, object] = {"jsonrpc": "2.0", "id": message["id"], "result": result}
                else:
                    self.server.methods.append(message["method"])
                    error = {"code": -32601, "message": f"unknown method {message['method']!r}"}
                    reply = {"jsonrpc": "2.0", "id": message["id"], "error": error}
                self.request.sendall(encode_frame(msgspec.json.encode(reply)))


def old_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capabilities: list[str]) -> Iterator[OldDaemon]:
    """For a fixture: the daemon, serving ``$CLAIF_COD_SOCKET`` in a private directory until the test ends."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    path = run_dir / "codd.sock"
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(path))
    monkeypatch.delenv("CLAIF_COD_AUTOSTART", raising=False)
    server = OldDaemon(path, capabilities)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
