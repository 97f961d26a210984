"""Hostile bytes against the decoder, offline and against a real daemon socket.

Offline: the atheris target in tests/fuzz/fuzz_protocol.py runs over its seed corpus and a few
hundred random inputs (no atheris needed), and for 5 s under libFuzzer when atheris is importable.
Live: a 4 GiB frame announcement must cost the daemon nothing and get FRAME_TOO_LARGE, and a
stream of 10k garbage frames must get exactly the error replies the codec predicts while the
daemon keeps serving everyone else. (tests/protocol/test_properties.py has the Hypothesis properties
of the same code; this file adds the fuzz target's oracles and the real socket.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from claif_cod.protocol import (
    DEFAULT_MAX_FRAME,
    METHODS,
    DaemonStatus,
    ErrorCode,
    ErrorResponse,
    FrameDecoder,
    ProtocolError,
    Response,
    decode,
    decode_result,
    encode_frame,
)

TESTS = Path(__file__).resolve().parents[1]
FUZZ_TARGET = TESTS / "fuzz" / "fuzz_protocol.py"
sys.path.insert(0, str(TESTS / "daemon"))
from daemon_process import DaemonProcess  # noqa: E402


def _load_target() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_protocol", FUZZ_TARGET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz = _load_target()
one_input: Callable[[bytes], None] = fuzz.test_one_input  # not test_*: pytest would collect it


# --- the fuzz target without atheris -----------------------------------------------------------


def test_committed_seed_corpus_is_current() -> None:
    committed = {path.name: path.read_bytes() for path in fuzz.CORPUS_DIR.iterdir()}
    seeds = fuzz.seed_inputs()
    assert len(committed) == len(seeds) >= 40
    assert sorted(committed.values()) == sorted(seeds.values()), (
        "tests/fuzz/corpus is stale; regenerate it with: python tests/fuzz/fuzz_protocol.py --make-corpus"
    )


def test_seeds_hold_every_documented_method() -> None:
    shown = set()
    for body in fuzz.documented_messages():
        message = decode(body)
        if not isinstance(message, (Response, ErrorResponse)):
            shown.add(str(type(message).__struct_config__.tag))
    assert shown == set(METHODS)


@pytest.mark.parametrize("path", sorted(fuzz.CORPUS_DIR.iterdir()), ids=lambda p: p.name)
def test_target_on_seed(path: Path) -> None:
    one_input(path.read_bytes())


def _random_input(rng: random.Random, bodies: list[bytes]) -> bytes:
    """A fuzzer-ish input: control prefix, then frames of valid, mutated and junk bodies and stray bytes."""
    parts = []
    for _ in range(rng.randint(0, 6)):
        kind = rng.random()
        if kind < 0.35:
            body = bytearray(rng.choice(bodies))
            for _ in range(rng.randint(0, 4)):
                i = rng.randrange(len(body))
                body[i : i + rng.randint(0, 3)] = rng.randbytes(rng.randint(0, 3))
            parts.append(encode_frame(bytes(body)) if body else b"\x00\x00\x00\x00")
        elif kind < 0.6:
            parts.append(encode_frame(rng.randbytes(rng.randint(1, 40))))
        elif kind < 0.75:
            parts.append(rng.randbytes(rng.randint(1, 6)))  # desynchronises the stream
        else:
            parts.append(encode_frame(rng.choice(bodies)))
    n = rng.randint(0, 7)
    return bytes([rng.randrange(256), n, *(rng.randrange(256) for _ in range(n))]) + b"".join(parts)


def test_target_on_random_inputs() -> None:
    rng = random.Random(20240611)
    bodies = fuzz.documented_messages()
    for _ in range(400):
        one_input(_random_input(rng, bodies))
    for size in (0, 1, 2, 3, 7, 64, 1000):
        for _ in range(20):
            one_input(rng.randbytes(size))


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_libfuzzer_run_5s(tmp_path: Path) -> None:
    """A real (short) coverage-guided run; crashes would leave a crash-* artifact in tmp_path."""
    work = tmp_path / "corpus"
    work.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ_TARGET),
            "-max_total_time=5",
            "-seed=1",
            "-timeout=10",
            "-rss_limit_mb=1024",
            f"-artifact_prefix={tmp_path}/",
            str(work),
            str(fuzz.CORPUS_DIR),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CLAIF_COD_FUZZ_DIR": str(tmp_path / "scratch")},
    )
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert "Done " in proc.stderr, tail
    assert not list(tmp_path.glob("crash-*")), tail


# --- against a real daemon ---------------------------------------------------------------------


@pytest.fixture
def daemon(codex_home: Path, tmp_path: Path) -> Iterator[DaemonProcess]:
    """tests/daemon's ``daemon`` fixture, which this directory can't see: a private daemon process."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    socket_path = run_dir / "codd.sock"
    env = {**os.environ, "CLAIF_COD_SOCKET": str(socket_path), "CODEX_HOME": str(codex_home)}
    process = DaemonProcess(socket=socket_path, state_dir=tmp_path / "state", log=tmp_path / "codd.log", env=env)
    process.start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


class RawConnection:
    """Blocking framed socket, built on the sans-IO codec only."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.decoder = FrameDecoder()
        self.pending: list[bytes] = []

    def send(self, body: bytes | dict[str, Any]) -> None:
        self.sock.sendall(encode_frame(body if isinstance(body, bytes) else json.dumps(body).encode()))

    def receive(self) -> Any:
        """The next message, or None at EOF (or a reset, which is how an abort looks here)."""
        while not self.pending:
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.pending += self.decoder.feed(data)
        return decode(self.pending.pop(0))

    def call(self, request_id: int, method: str, params: dict[str, Any] | None = None) -> Any:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        reply = self.receive()
        assert isinstance(reply, Response), reply
        assert reply.id == request_id
        return reply.result

    def hello(self) -> None:
        self.call(0, "hello", {"protocol_version": 1, "package_version": "test", "client_name": "robustness"})

    def close(self) -> None:
        self.sock.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def still_serves(daemon: DaemonProcess) -> DaemonStatus:
    conn = RawConnection(daemon.socket)
    try:
        conn.hello()
        status = decode_result(conn.call(1, "daemon.status"), DaemonStatus)
    finally:
        conn.close()
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert status.pid == daemon.proc.pid
    return status


@pytest.mark.parametrize("announced", [2**32 - 1, DEFAULT_MAX_FRAME + 1], ids=["4GiB", "cap+1"])
def test_huge_frame_announcement_costs_nothing_and_is_refused(daemon: DaemonProcess, announced: int) -> None:
    """The cap is checked on the header: nothing is reserved for the announced body, the peer is told why.

    64 KiB of body follow each header: what the daemon reads ahead of the header check is bounded by
    what the peer actually sent (its StreamReader buffers up to 2 x max_frame_size), not by the
    announcement, and RSS measures allocator behaviour for that, so the trailer stays small.
    """
    assert daemon.proc is not None
    pid = daemon.proc.pid
    still_serves(daemon)  # warm: the first connection's allocations are not what we measure
    before = rss_kib(pid)
    for _ in range(20):
        conn = RawConnection(daemon.socket)
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may hang up before reading all
                conn.sock.sendall(announced.to_bytes(4, "big") + b"\0" * (64 << 10))
            reply = conn.receive()
            assert isinstance(reply, ErrorResponse), reply
            assert reply.id is None
            assert reply.error.code == ErrorCode.FRAME_TOO_LARGE == -32004
            assert f"{announced} bytes" in reply.error.message
            assert conn.receive() is None  # and then the connection is closed
        finally:
            conn.close()
    after = rss_kib(pid)
    assert after - before < 4 * 1024, f"daemon RSS grew from {before} KiB to {after} KiB"
    still_serves(daemon)
    assert daemon.log.read_text().count("connection.framing_error") == 20


def _garbage(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.6:
        return rng.randbytes(rng.randint(1, 48))
    if kind < 0.75:
        value: Any = rng.choice([None, True, 3, -1.5, "x", [], [1, {}], {"a": 1}, {"jsonrpc": "2.0"}])
        return json.dumps(value).encode()
    envelope: dict[str, Any] = {"jsonrpc": rng.choice(["2.0", "2.0", "1.0", 2])}
    if rng.random() < 0.8:
        envelope["id"] = rng.choice([rng.randint(-5, 10**6), f"g{rng.randint(0, 99)}", None, 1.5, [1]])
    envelope["method"] = rng.choice([*sorted(METHODS), "nope", "", 7, "hello "])
    envelope["params"] = rng.choice([{}, [], "p", {"protocol_version": "1"}, {"session_id": 5}, {"id": {}}])
    return json.dumps(envelope).encode()


def test_ten_thousand_garbage_frames_get_their_errors_and_the_daemon_keeps_serving(daemon: DaemonProcess) -> None:
    rng = random.Random(7)
    frames: list[bytes] = []
    expected: list[tuple[Any, int]] = []
    while len(frames) < 10_000:
        body = _garbage(rng)
        try:
            decode(body)
        except ProtocolError as exc:
            frames.append(body)
            if not exc.notification:  # the daemon never answers a notification, not even with an error
                expected.append((exc.request_id, exc.code))
        # else: a valid message by chance; never send it (it could be daemon.shutdown)
    assert len(expected) > 9_000

    conn = RawConnection(daemon.socket, timeout=30)
    bystander = RawConnection(daemon.socket)
    try:
        conn.hello()
        sender_error: list[BaseException] = []

        def send_all() -> None:
            try:
                conn.sock.sendall(b"".join(encode_frame(body) for body in frames))
            except BaseException as exc:  # reported below
                sender_error.append(exc)

        sender = threading.Thread(target=send_all)
        started = time.monotonic()
        sender.start()
        replies = []
        for _ in expected:
            reply = conn.receive()
            assert reply is not None, f"connection closed after {len(replies)} replies"
            replies.append(reply)
        sender.join(30)
        assert not sender_error
        assert all(isinstance(r, ErrorResponse) for r in replies)
        assert [(r.id, r.error.code) for r in replies] == expected
        assert time.monotonic() - started < 30

        # The garbage didn't break this connection, nor anyone else's.
        status = decode_result(conn.call(10**7, "daemon.status"), DaemonStatus)
        assert status.connections == 2
        bystander.hello()
        decode_result(bystander.call(1, "daemon.status"), DaemonStatus)
        still_serves(daemon)
    finally:
        conn.close()
        bystander.close()


def _huge_method_request() -> bytes:
    """A valid-size request with a 16 MiB unknown method name: echoed whole, the error would not fit a
    frame (repr turns each U+0080, 2 bytes of UTF-8, into 5 bytes once JSON-escaped)."""
    method = "\x80" * ((DEFAULT_MAX_FRAME - 100) // 2)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}, ensure_ascii=False).encode()
    assert len(body) <= DEFAULT_MAX_FRAME
    return body


def test_a_huge_unknown_method_gets_a_short_error_and_no_traceback(daemon: DaemonProcess) -> None:
    conn = RawConnection(daemon.socket, timeout=30)
    try:
        conn.hello()
        conn.send(_huge_method_request())
        reply = conn.receive()
    finally:
        conn.close()
    still_serves(daemon)
    log = daemon.log.read_text(errors="replace")
    assert "Traceback" not in log and len(log) < 1 << 20, f"{len(log)} bytes of log"
    assert isinstance(reply, ErrorResponse), reply
    assert reply.id == 1
    assert reply.error.code == ErrorCode.METHOD_NOT_FOUND
    assert len(reply.error.message) < 1000  # the method name is cut, not echoed whole
