"""An offline model speaking the OpenAI Responses API, scripted by markers in the prompt.

Codex (and anything else that talks to ``POST /v1/responses``) can be pointed at this
server so tests run without network access or API keys. Behaviour is chosen by markers
such as ``[[reply:hi]]`` in the last real user message (:mod:`.markers`), so a test can script
the model from outside the process that runs Codex. ``docs/testing.md`` lists every marker.
This module speaks HTTP; what the model answers is :mod:`.responder`.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from claif_cod.testing.markers import BadMarker
from claif_cod.testing.recorded import RecordedRequest, item_words
from claif_cod.testing.responder import Responder, SharedState

_POLL_S = 0.02  # how quickly stop() is noticed by the serve loop and stalled handlers


class _Aborted(Exception):
    """Raised inside a handler when the server stops while a response is being paced out."""


def _error_type(status: int, code: str | None) -> str:
    """The ``error.type`` OpenAI pairs with a status and code."""
    if code == "insufficient_quota":
        return code
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


class _HTTPServer(ThreadingHTTPServer):
    """Tracks each connection's thread and socket so ``stop()`` can cut stalled handlers short."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: SharedState) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.connections: dict[threading.Thread, socket.socket] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            daemon=True,
            name="claif-test-model-request",
        )
        with self.state.cond:
            self.connections[thread] = request
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.state.cond:
                self.connections.pop(threading.current_thread(), None)


class _Handler(BaseHTTPRequestHandler):
    """Answers one request per connection, then closes it (simplest correct HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; the test's own output is what matters."""

    def do_GET(self) -> None:
        self.close_connection = True
        self._record({}, [])
        self.error(404, "not_found", f"No route for GET {self.path}")

    def do_POST(self) -> None:
        self.close_connection = True
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.error(400, "invalid_json", "The request body is not valid JSON.")
            return
        if not isinstance(body, dict):
            body = {}
        words = [word for item in body.get("input") or [] for word in item_words(item)]
        request, cached = self._record(body, words)
        if not self.path.rstrip("/").endswith("/responses"):
            self.error(404, "not_found", f"No route for POST {self.path}")
            return
        try:
            Responder(self, self.server.state, request, len(words), cached).run()
        except BadMarker as exc:
            self.error(400, "invalid_marker", str(exc))
        except (_Aborted, OSError):
            pass  # the server is stopping or the client hung up; nothing left to say

    def _record(self, body: dict[str, Any], words: list[str]) -> tuple[RecordedRequest, int]:
        request = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        return request, self.server.state.record(request, words)

    def error(self, status: int, code: str | None, message: str) -> None:
        """Send an OpenAI-style JSON error body."""
        payload = json.dumps(
            {"error": {"message": message, "type": _error_type(status, code), "param": None, "code": code}}
        ).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def hold(self) -> None:
        """Keep the connection open until the client hangs up or the server stops."""
        while not self.server.state.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], _POLL_S)
            if readable and not self.connection.recv(4096):
                return

    def pause(self, seconds: float) -> None:
        if self.server.state.stopping.wait(seconds):
            raise _Aborted

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()

    def event(self, name: str, **data: Any) -> None:
        self.wfile.write(f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode())
        self.wfile.flush()


class ModelServer:
    """A scripted Responses-API model on a background thread; usable as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._state = SharedState()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("ModelServer already started")
        self._httpd = _HTTPServer(self._address, self._state)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            daemon=True,
            name="claif-test-model-server",
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, cut stalled responses short and join every thread; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None or self._thread is None:
            return
        self._state.stopping.set()
        httpd.shutdown()
        with self._state.cond:
            self._state.cond.notify_all()
            connections = dict(httpd.connections)
        for sock in connections.values():
            with contextlib.suppress(OSError):  # the client may have closed it already
                sock.shutdown(socket.SHUT_RDWR)
        for thread in connections:
            thread.join(timeout=5)
        httpd.server_close()
        self._thread.join()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for OpenAI-style clients and Codex's ``base_url`` (ends in ``/v1``)."""
        if self._httpd is None:
            raise RuntimeError("ModelServer is not running")
        host, port = cast("tuple[str, int]", self._httpd.server_address[:2])
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._state.cond:
            return list(self._state.requests)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests arrived; raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while len(self._state.requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {n} requests, got {len(self._state.requests)}")
                self._state.cond.wait(remaining)
            return list(self._state.requests)
