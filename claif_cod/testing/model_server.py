"""An offline model speaking the OpenAI Responses API, scripted by markers in the prompt.

Codex (and anything else that talks to ``POST /v1/responses``) can be pointed at this
server so tests run without network access or API keys. Behaviour is chosen by markers
such as ``[[reply:hi]]`` in the last real user message, so a test can script the model
from outside the process that runs Codex. ``docs/testing.md`` lists every marker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from claif_cod.testing import calls
from claif_cod.testing.recorded import RecordedRequest, item_words

_MARKER = re.compile(
    r"\[\[(reply|long|slow|status|stall-mid|stall|flaky|incomplete|failed|reasoning|tool|barrier)"
    r"(?::(.*?))?\]\]",
    re.DOTALL,
)
_REASONING_SUMMARY = "Thinking about how to answer this request."  # seven words = reasoning_tokens
_POLL_S = 0.02  # how quickly stop() is noticed by the serve loop and stalled handlers

_ERROR_MESSAGES = {
    "context_length_exceeded": "Your input exceeds the context window of this model.",
    "rate_limit_exceeded": "Rate limit reached for requests. Please try again later.",
    "insufficient_quota": "You exceeded your current quota, please check your plan and billing details.",
    "invalid_api_key": "Incorrect API key provided.",
    "server_error": "The server had an error while processing your request.",
}


class _Aborted(Exception):
    """Raised inside a handler when the server stops while a response is being paced out."""


class _BadMarker(ValueError):
    """A marker argument that cannot be parsed; answered with HTTP 400 so the test author sees it."""


@dataclass(frozen=True)
class _Script:
    """What the last real user message asked the model to do."""

    text: str
    markers: dict[str, str]

    @classmethod
    def parse(cls, message: str) -> _Script:
        markers = {m.group(1): m.group(2) or "" for m in _MARKER.finditer(message)}
        return cls(calls.CALL_MARKER.sub("", _MARKER.sub("", message)).strip(), markers)

    def number(self, name: str) -> int:
        try:
            return int(self.markers[name])
        except ValueError:
            raise _BadMarker(f"[[{name}:...]] needs an integer, got {self.markers[name]!r}") from None

    def status(self) -> tuple[int, str | None]:
        code, _, error_code = self.markers["status"].partition(":")
        try:
            status = int(code)
        except ValueError:
            raise _BadMarker(f"[[status:...]] needs an HTTP status, got {code!r}") from None
        return status, error_code or None


def _chunks(text: str) -> list[str]:
    """Split a reply into one delta per word, keeping whitespace so the deltas join back exactly."""
    chunks = re.findall(r"\s*\S+", text)
    tail = text[len("".join(chunks)) :]
    if tail and chunks:
        chunks[-1] += tail
    elif tail:
        chunks.append(tail)
    return chunks


def _error_type(status: int, code: str | None) -> str:
    """The ``error.type`` OpenAI pairs with a status and code."""
    if code == "insufficient_quota":
        return code
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


def _common_prefix(a: list[str], b: list[str]) -> int:
    shorter = min(len(a), len(b))
    return next((i for i in range(shorter) if a[i] != b[i]), shorter)


def _usage(input_tokens: int, cached: int, output_tokens: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


@dataclass
class _State:
    """Everything the handler threads share, guarded by one condition variable."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    stopping: threading.Event = field(default_factory=threading.Event)
    requests: list[RecordedRequest] = field(default_factory=list)
    prompts_by_cache_key: dict[str, list[str]] = field(default_factory=dict)
    flaky_seen: set[str] = field(default_factory=set)
    barrier_arrivals: int = 0
    next_id: int = 0

    def new_id(self, prefix: str) -> str:
        with self.cond:
            self.next_id += 1
            return f"{prefix}_{self.next_id}"

    def record(self, request: RecordedRequest, words: list[str]) -> int:
        """Store the request and return its cached-prefix length in words."""
        key = request.body.get("prompt_cache_key")
        with self.cond:
            self.requests.append(request)
            self.cond.notify_all()
            if not isinstance(key, str):
                return 0
            previous = self.prompts_by_cache_key.get(key, [])
            self.prompts_by_cache_key[key] = words
        return _common_prefix(previous, words)

    def barrier(self, parties: int) -> None:
        """Hold until ``parties`` barrier requests have arrived: proof that they run concurrently."""
        with self.cond:
            self.barrier_arrivals += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.barrier_arrivals >= parties or self.stopping.is_set())

    def first_flaky(self, request: RecordedRequest) -> bool:
        """True only for the first ``[[flaky]]`` request of a conversation."""
        key = hashlib.sha256(json.dumps(request.user_texts()).encode()).hexdigest()
        with self.cond:
            first = key not in self.flaky_seen
            self.flaky_seen.add(key)
            return first


class _HTTPServer(ThreadingHTTPServer):
    """Tracks each connection's thread and socket so ``stop()`` can cut stalled handlers short."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: _State) -> None:
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
            _Responder(self, request, len(words), cached).run()
        except _BadMarker as exc:
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


class _Responder:
    """Plays one scripted response onto a handler's connection."""

    def __init__(self, handler: _Handler, request: RecordedRequest, input_tokens: int, cached: int) -> None:
        self.handler = handler
        self.request = request
        self.state = handler.server.state
        user_texts = request.user_texts()
        self.script = _Script.parse(user_texts[-1] if user_texts else "")
        self.turn = len(user_texts)
        self.tool_outputs = calls.returned_outputs(request)
        self.missing: list[str] = []
        # Parse every marker argument before the first byte goes out, so a typo becomes a clean 400.
        self.calls = [] if self.tool_outputs is not None else self._calls(user_texts[-1] if user_texts else "")
        self.status = self.script.status() if "status" in self.script.markers else None
        self.delay = self.script.number("slow") / 1000 if "slow" in self.script.markers else 0.0
        self.reply = self._reply_text()
        self.input_tokens = input_tokens
        self.cached = cached
        self.response_id = self.state.new_id("resp")
        self.deltas = 0
        self.reasoning_tokens = 0

    def run(self) -> None:
        markers = self.script.markers
        if self.status is not None:
            status, code = self.status
            self.handler.error(status, code, _ERROR_MESSAGES.get(code or "", f"Scripted HTTP {status}."))
            return
        if "stall" in markers:
            self.handler.hold()
            return
        if "barrier" in markers:
            self.state.barrier(self.script.number("barrier"))
        self.handler.start_stream()
        self.handler.event("response.created", response={"id": self.response_id})
        if "failed" in markers:
            self.handler.event(
                "response.failed",
                response={"id": self.response_id, "error": {"code": "server_error", "message": "scripted failure"}},
            )
            return
        output_index = 0
        if "reasoning" in markers:
            self._reasoning(output_index)
            output_index += 1
        if self.calls:
            cut = "flaky" in markers and self.state.first_flaky(self.request)
            for call in self.calls[:1] if cut else self.calls:
                self._function_call(output_index, call.name, call.arguments)
                output_index += 1
            if cut:
                return
        elif "tool" in markers and self.tool_outputs is None:
            self._function_call(output_index, calls.SHELL_TOOL, json.dumps({"cmd": markers["tool"]}))
        elif not self._message(output_index):
            return
        usage = _usage(self.input_tokens, self.cached, self.deltas + self.reasoning_tokens, self.reasoning_tokens)
        if "incomplete" in markers:
            details = {"reason": "max_output_tokens"}
            self.handler.event(
                "response.incomplete", response={"id": self.response_id, "incomplete_details": details, "usage": usage}
            )
        else:
            self.handler.event("response.completed", response={"id": self.response_id, "usage": usage})

    def _calls(self, message: str) -> list[calls.ScriptedCall]:
        """The scripted calls, all to offered tools; none when a called tool was not offered (the reply says so)."""
        try:
            scripted = calls.scripted_calls(message)
        except calls.BadCallMarker as exc:
            raise _BadMarker(str(exc)) from None
        self.missing = calls.missing_tools(self.request, scripted)
        return [] if self.missing else scripted

    def _reply_text(self) -> str:
        markers = self.script.markers
        if self.tool_outputs is not None:
            return calls.report(self.tool_outputs)
        if self.missing:
            return f"Not offered: {', '.join(self.missing)}"
        if "reply" in markers:
            return markers["reply"]
        if "long" in markers:
            return " ".join(f"w{i}" for i in range(1, self.script.number("long") + 1))
        prefix = f"[turn {self.turn}] " if self.turn > 1 else ""
        return f"{prefix}Echo: {self.script.text}"

    def _reasoning(self, output_index: int) -> None:
        """``[[reasoning]]``: one summary, deltas only; ``[[reasoning:N]]``: N summary parts, each announced."""
        parts = self.script.number("reasoning") if self.script.markers["reasoning"] else 0
        texts = [_REASONING_SUMMARY] if parts == 0 else [f"Part {i} of the reasoning." for i in range(1, parts + 1)]
        item_id = self.state.new_id("rs")
        ids = {"item_id": item_id, "output_index": output_index}
        self.handler.event(
            "response.output_item.added",
            output_index=output_index,
            item={"type": "reasoning", "id": item_id, "summary": []},
        )
        for index, text in enumerate(texts):
            part = {"type": "summary_text", "text": ""}
            if parts:
                self.handler.event("response.reasoning_summary_part.added", **ids, summary_index=index, part=part)
            for chunk in _chunks(text):
                self.handler.event("response.reasoning_summary_text.delta", **ids, summary_index=index, delta=chunk)
                self.reasoning_tokens += 1
            if parts:
                self.handler.event("response.reasoning_summary_text.done", **ids, summary_index=index, text=text)
                done = {"type": "summary_text", "text": text}
                self.handler.event("response.reasoning_summary_part.done", **ids, summary_index=index, part=done)
        self.handler.event(
            "response.output_item.done",
            output_index=output_index,
            item={"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": t} for t in texts]},
        )

    def _function_call(self, output_index: int, name: str, arguments: str) -> None:
        item = {
            "type": "function_call",
            "id": self.state.new_id("fc"),
            "call_id": self.state.new_id("call"),
            "name": name,
        }
        self.handler.event("response.output_item.added", output_index=output_index, item={**item, "arguments": ""})
        self.handler.event(
            "response.function_call_arguments.delta", item_id=item["id"], output_index=output_index, delta=arguments
        )
        self.handler.event(
            "response.output_item.done", output_index=output_index, item={**item, "arguments": arguments}
        )
        self.deltas += 1

    def _message(self, output_index: int) -> bool:
        """Stream the assistant message; False when the script cuts the stream short after two deltas."""
        markers = self.script.markers
        cut = "stall-mid" in markers or ("flaky" in markers and self.state.first_flaky(self.request))
        chunks = _chunks(self.reply)
        item = {"type": "message", "role": "assistant", "id": self.state.new_id("msg")}
        self.handler.event("response.output_item.added", output_index=output_index, item={**item, "content": []})
        for chunk in chunks[:2] if cut else chunks:
            if self.delay:
                self.handler.pause(self.delay)
            self.handler.event(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=output_index,
                content_index=0,
                delta=chunk,
            )
            self.deltas += 1
        if cut:
            if "stall-mid" in markers:
                self.handler.hold()
            return False
        self.handler.event(
            "response.output_item.done",
            output_index=output_index,
            item={**item, "content": [{"type": "output_text", "text": self.reply}]},
        )
        return True


class ModelServer:
    """A scripted Responses-API model on a background thread; usable as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._state = _State()
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
