"""Requests aiohttp cannot parse get an OpenAI error body and one warning, and the server goes on serving.

Each case is sent on a raw socket (no HTTP library would send it) to a real daemon logging JSON lines.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.http_parser import HAS_BROTLI
from daemon_process import DaemonProcess
from test_http_endpoint import HttpDaemon, start_http_daemon

pytestmark = pytest.mark.codex

LOG_VALUE_LIMIT = 300 + len("...(+99999 chars)")
"""claif_cod._log caps every logged string at 300 characters plus a note of what was cut."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        error: dict[str, Any] = json.loads(self.body)["error"]
        return error


def exchange(address: tuple[str, int], raw: bytes) -> Answer:
    """Sends ``raw`` and reads the answer to the end: the server closes a connection it could not parse."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return Answer(int(status_line.split()[1]), headers, body)


@pytest.fixture
def http(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[HttpDaemon]:
    process = start_http_daemon(daemon_env, tmp_path, "--log-format", "json")
    yield HttpDaemon(process, workdir)
    process.stop()


def address(http: HttpDaemon) -> tuple[str, int]:
    host, port = http.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def request(*headers: bytes, start: bytes = b"GET /healthz HTTP/1.1", body: bytes = b"") -> bytes:
    return b"\r\n".join([start, b"Host: 127.0.0.1", *headers]) + b"\r\n\r\n" + body


CHUNKED_START = b"POST /v1/chat/completions HTTP/1.1"
CASES: dict[str, tuple[bytes, int]] = {
    "nul_in_header": (request(b"X-Note: a\x00b"), 400),
    "ten_kib_header": (request(b"X-Big: " + b"a" * 10240), 431),
    "two_hosts": (request(b"Host: evil.example"), 400),
    "bad_request_line": (b"THIS IS NOT HTTP " + b"x" * 2000 + b"\r\n\r\n", 400),
    "invalid_chunked_body": (
        request(
            b"Content-Type: application/json",
            b"Transfer-Encoding: chunked",
            start=CHUNKED_START,
            body=b"zz\r\n{}\r\n0\r\n\r\n",
        ),
        400,
    ),
}


def log_records(process: DaemonProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.log.read_text().splitlines() if line.startswith("{")]


def parse_warnings(process: DaemonProcess) -> list[dict[str, Any]]:
    return [r for r in log_records(process) if r.get("event") == "http.unparsable_request"]


@pytest.mark.parametrize("case", list(CASES))
def test_unparsable_request_gets_an_openai_error_and_one_warning(http: HttpDaemon, case: str) -> None:
    raw, status = CASES[case]
    bystander = socket.create_connection(address(http), timeout=30)  # an idle keep-alive client
    try:
        answer = exchange(address(http), raw)
        assert answer.status == status, answer
        error = answer.error()
        assert set(error) == {"message", "type", "param", "code"}, error
        assert error["type"] == "invalid_request_error" and error["param"] is None and error["code"], error
        assert 0 < len(error["message"]) <= 400, error
        warnings = parse_warnings(http.process)
        assert len(warnings) == 1, warnings
        assert warnings[0]["level"] == "warning" and warnings[0]["status"] == status, warnings
        # named as every answer is, and its warning with it
        assert answer.headers["x-request-id"].startswith("req_"), answer.headers
        assert warnings[0]["request"] == answer.headers["x-request-id"], warnings
        records = log_records(http.process)
        assert all(r["level"] not in ("error", "critical") for r in records), records
        assert all("exception" not in r and "Traceback" not in json.dumps(r) for r in records), records
        assert all(len(v) <= LOG_VALUE_LIMIT for r in records for v in r.values() if isinstance(v, str)), records
        # the server goes on: the client that was already connected, and a new one, are both served
        bystander.sendall(request())
        assert b'"status":"ok"' in bystander.recv(65536)
        assert http.process.status().http == http.url
        assert exchange(address(http), request(b"Connection: close")).status == 200
    finally:
        bystander.close()


def test_a_flood_of_unparsable_requests_is_one_warning_a_minute(http: HttpDaemon) -> None:
    """Anyone who can connect can send thousands a second (no token is read before the parse): the
    log gets the first, and then at most one a minute saying how many."""
    raw, status = CASES["nul_in_header"]
    assert all(exchange(address(http), raw).status == status for _ in range(50))
    warnings = parse_warnings(http.process)
    assert len(warnings) == 1 and warnings[0]["count"] == 1, warnings


SECRET = b"sk-PROMPT-AND-KEY-7431"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(request(b"Authorization: Bearer " + SECRET + b"\x0c"), id="key_in_a_bad_header"),
        pytest.param(  # a client counting the body in characters, not bytes: the rest reads as a request
            request(b"Content-Length: 2", body=b'{}{"messages": "' + SECRET + b'"}\r\n\r\n'),
            id="prompt_in_a_misread_body",
        ),
    ],
)
def test_the_warning_keeps_none_of_the_clients_bytes(http: HttpDaemon, raw: bytes) -> None:
    """aiohttp's reasons quote what they could not parse (a header with its key, a body with its
    prompt): the warning keeps only what went wrong."""
    exchange(address(http), raw)
    [warning] = parse_warnings(http.process)
    assert warning["reason"] in ("Invalid header value char", "Invalid method encountered"), warning
    assert SECRET.decode() not in http.process.log.read_text()


def test_a_body_that_breaks_after_its_handler_began_reading_is_a_400_too(http: HttpDaemon) -> None:
    """The handler is reading (it sent ``100 Continue``) when the broken chunk arrives: one answer, one warning."""
    with socket.create_connection(address(http), timeout=30) as sock:
        sock.sendall(
            request(
                b"Content-Type: application/json",
                b"Transfer-Encoding: chunked",
                b"Expect: 100-continue",
                start=CHUNKED_START,
            )
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"2\r\n{}\r\nzz\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 ") == 1, received
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/json" in head, received
    assert json.loads(body)["error"]["code"] == "malformed_request", body
    [warning] = parse_warnings(http.process)  # one id, in the answer and in its warning
    assert f"x-request-id: {warning['request']}".encode() in head.lower(), received
    warnings = parse_warnings(http.process)
    assert len(warnings) == 1 and warnings[0]["status"] == 400, warnings
    assert all(r["level"] not in ("error", "critical") for r in log_records(http.process))


NOT_GZIP = b"this body is not the gzip it says it is"


@pytest.mark.parametrize(
    ("start", "status"),
    [
        pytest.param(CHUNKED_START, 400, id="read_by_its_handler"),
        pytest.param(b"GET /healthz HTTP/1.1", 200, id="left_unread"),
    ],
)
def test_a_body_that_is_not_its_content_encoding_is_no_traceback(http: HttpDaemon, start: bytes, status: int) -> None:
    """aiohttp reads what a handler left of a body after its answer, and that read raised again the
    body's decoding error: an error record with a traceback for each such request, whichever its route
    (a client without the token, answered 401 unread, too), where a bad body is the client's fault."""
    raw = request(
        b"Content-Encoding: gzip",
        b"Connection: close",
        b"Content-Length: %d" % len(NOT_GZIP),
        start=start,
        body=NOT_GZIP,
    )
    answer = exchange(address(http), raw)
    assert answer.status == status, answer
    if status == 400:
        error = answer.error()
        assert error["code"] == "malformed_request", answer
        assert error["message"].endswith("request: Can not decode content-encoding: gzip"), error
        [warning] = parse_warnings(http.process)  # once, not again when aiohttp reads the rest
        assert warning["request"] == answer.headers["x-request-id"], warning
        assert warning["reason"] == "Can not decode content-encoding", warning
    leftovers = [r for r in log_records(http.process) if r.get("event") == "http.unread_body_broken"]
    if status == 400:
        assert leftovers == [], leftovers
    else:
        [warning] = leftovers
        assert warning["level"] == "warning" and warning["reason"] == "Can not decode content-encoding", warning
    records = log_records(http.process)
    assert all(r["level"] not in ("error", "critical") for r in records), records
    assert all("exception" not in r and "Traceback" not in json.dumps(r) for r in records), records
    assert exchange(address(http), request(b"Connection: close")).status == 200


@pytest.mark.skipif(HAS_BROTLI, reason="this aiohttp decodes brotli")
def test_a_content_encoding_it_cannot_decode_is_a_415_saying_which_it_can(http: HttpDaemon) -> None:
    """aiohttp told the client to "install `Brotli`" (on the server), in a 400."""
    raw = request(b"Content-Encoding: br", b"Content-Length: 2", start=CHUNKED_START, body=b"{}")
    answer = exchange(address(http), raw)
    assert answer.status == 415, answer
    error = answer.error()
    assert error["code"] == "unsupported_content_encoding", error
    assert "install" not in error["message"] and "gzip or deflate" in error["message"], error
    assert answer.headers["accept-encoding"] == "gzip, deflate", answer.headers
    [warning] = parse_warnings(http.process)
    assert warning["status"] == 415 and warning["reason"] == "Can not decode content-encoding", warning
