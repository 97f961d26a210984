"""An HTTP client that stops reading its stream: bounded as a socket client is, and it holds nobody up.

Each test opens a raw TCP connection to ``serve --http`` with a tiny receive buffer, sends a
streamed request and never reads, the way a hung or paused consumer looks to the daemon.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from chat_messages import user
from test_http_endpoint import HttpDaemon, start_http_daemon
from test_limits import rss_bytes

pytestmark = pytest.mark.codex

WAIT_S = 60.0


@contextlib.contextmanager
def non_reader(http: HttpDaemon, body: dict[str, object]) -> Iterator[socket.socket]:
    """A connection that sent a streamed chat request and reads nothing of the answer."""
    address = urlsplit(http.url)
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.connect((address.hostname, address.port))
    payload = json.dumps({"model": "o4-mini", "stream": True, **body}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    conn.sendall(head.encode() + payload)
    try:
        yield conn
    finally:
        conn.close()


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_client_that_stops_reading_is_dropped_at_the_backlog_cap(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    """The turn's events keep coming at the daemon's pace; past ``--max-outbound-bytes`` unread, the
    client is disconnected and its turn interrupted, and the daemon's memory never held the stream."""
    cap = 256 * 1024
    process = start_http_daemon(daemon_env, tmp_path, "--max-outbound-bytes", str(cap), "--log-format", "json")
    try:
        http = HttpDaemon(process, workdir)
        assert process.proc is not None
        rss_before = rss_bytes(process.proc.pid)
        with non_reader(http, {"messages": [user("[[long:60000]] count")]}):  # ~13 MB of SSE
            wait_for(lambda: "http.slow_reader_dropped" in process.log.read_text(), "the slow reader was not dropped")
            wait_for(lambda: process.status().turns_in_flight == 0, "its turn was not interrupted")
        [dropped] = [json.loads(line) for line in process.log.read_text().splitlines() if "slow_reader_dropped" in line]
        assert dropped["level"] == "warning" and cap < dropped["pending_bytes"] <= cap + 4096, dropped
        assert rss_bytes(process.proc.pid) - rss_before < 48 * 2**20
        # and the endpoint serves the next client as before
        reply = http.client().chat.completions.create(model="o4-mini", messages=[user("after")])
        assert reply.choices[0].message.content == "Echo: after"
    finally:
        process.stop()


def test_a_non_reading_stream_does_not_hold_its_named_session(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    """Its turn ends when Codex's does, as a socket client's would: the session's next turn, from
    another client, runs at once instead of waiting until the non-reader hangs up."""
    process = start_http_daemon(daemon_env, tmp_path)
    try:
        http = HttpDaemon(process, workdir)
        session = {"session_id": "shared"}
        with non_reader(http, {"messages": [user("[[long:20000]] count")], **session}):  # ~4 MB, below the cap
            wait_for(lambda: process.status().turns_in_flight == 0, "the unread stream's turn did not end")
            other = http.client(timeout=WAIT_S).chat.completions.create(
                model="o4-mini", messages=[user("next")], extra_body=session
            )
            assert other.choices[0].message.content == "[turn 2] Echo: next"
    finally:
        process.stop()
