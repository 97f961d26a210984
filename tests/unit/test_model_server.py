"""The offline model server and CODEX_HOME writer, driven over plain HTTP (no Codex)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from claif_cod.testing import ModelServer, RecordedRequest, model_catalog, write_codex_home

PREAMBLE = [
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
    {
        "type": "message",
        "role": "developer",
        "content": [
            {"type": "input_text", "text": "Be terse."},
            {"type": "input_text", "text": "<permissions instructions>\nread-only\n</permissions instructions>"},
        ],
    },
    {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "<environment_context>\n  <cwd>/x</cwd>\n</environment_context>"}],
    },
]
PREAMBLE_WORDS = 3 + 7 + 3  # every word counts, Codex's <tagged> context included


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def body(*items: dict[str, Any], cache_key: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"model": "o4-mini", "stream": True, "input": [*PREAMBLE, *items], "tools": []}
    if cache_key is not None:
        request["prompt_cache_key"] = cache_key
    return request


class Reply:
    """A parsed HTTP answer: status, headers, and the SSE events or JSON error."""

    def __init__(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def events(self) -> list[dict[str, Any]]:
        events = []
        for block in self.raw.decode().split("\n\n"):
            if not block:
                continue
            name_line, data_line = block.split("\n")
            event = json.loads(data_line.removeprefix("data: "))
            assert name_line == f"event: {event['type']}"
            events.append(event)
        return events

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def text(self) -> str:
        return "".join(e["delta"] for e in self.events if e["type"] == "response.output_text.delta")

    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = self.events[-1]["response"]["usage"]
        return usage

    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = json.loads(self.raw)["error"]
        return error


def address(server: ModelServer) -> tuple[str, int]:
    url = urlsplit(server.url)
    assert url.hostname is not None
    assert url.port is not None
    return url.hostname, url.port


def post(server: ModelServer, payload: dict[str, Any], path: str = "/v1/responses", timeout: float = 5.0) -> Reply:
    conn = http.client.HTTPConnection(*address(server), timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(payload), {"content-type": "application/json"})
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            raw = response.read()
        except http.client.IncompleteRead as exc:
            raw = exc.partial
        return Reply(response.status, headers, raw)
    finally:
        conn.close()


def ask(server: ModelServer, *texts: str, cache_key: str | None = None) -> Reply:
    """Send a conversation of alternating user/assistant texts, ending with a user text."""
    items = [user(t) if i % 2 == 0 else assistant(t) for i, t in enumerate(texts)]
    return post(server, body(*items, cache_key=cache_key))


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


def test_default_reply_streams_echo_as_one_delta_per_word(server: ModelServer) -> None:
    reply = ask(server, "hello   brave world ")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["connection"] == "close"
    assert reply.types() == [
        "response.created",
        "response.output_item.added",
        *["response.output_text.delta"] * 4,
        "response.output_item.done",
        "response.completed",
    ]
    events = reply.events
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Echo:", " hello", "   brave", " world"]
    item_id = events[1]["item"]["id"]
    assert events[1]["item"] == {"type": "message", "role": "assistant", "id": item_id, "content": []}
    assert all(e["item_id"] == item_id and e["content_index"] == 0 for e in events[2:6])
    assert events[6]["item"]["content"] == [{"type": "output_text", "text": "Echo: hello   brave world"}]
    assert events[7]["response"]["id"] == events[0]["response"]["id"]


def test_later_turns_are_numbered(server: ModelServer) -> None:
    assert ask(server, "one", "Echo: one", "two").text() == "[turn 2] Echo: two"


def test_recorded_request_sees_past_codex_preamble(server: ModelServer) -> None:
    ask(server, "first", "answer", "second")
    [request] = server.requests
    assert isinstance(request, RecordedRequest)
    assert request.path == "/v1/responses"
    assert request.headers["content-type"] == "application/json"
    assert request.body["model"] == "o4-mini"
    assert request.user_texts() == ["first", "second"]
    assert request.developer_texts() == ["You are Codex.", "Be terse."]
    assert request.messages() == [("user", "first"), ("assistant", "answer"), ("user", "second")]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("say [[reply:Exactly  this, please.]] now", "Exactly  this, please."),
        ("[[long:5]]", "w1 w2 w3 w4 w5"),
        ("hi [[unknown]]", "Echo: hi [[unknown]]"),
        ("only markers [[slow:1]]", "Echo: only markers"),
    ],
)
def test_reply_text_markers(server: ModelServer, prompt: str, expected: str) -> None:
    reply = ask(server, prompt)
    assert reply.text() == expected
    assert reply.events[-2]["item"]["content"][0]["text"] == expected


def test_only_the_last_user_message_is_scripted(server: ModelServer) -> None:
    assert ask(server, "[[reply:old]]", "old", "fresh").text() == "[turn 2] Echo: fresh"


def test_long_reply_has_one_delta_and_output_token_per_word(server: ModelServer) -> None:
    reply = ask(server, "[[long:300]]")
    assert reply.types().count("response.output_text.delta") == 300
    assert reply.usage()["output_tokens"] == 300


def test_slow_waits_before_each_delta(server: ModelServer) -> None:
    started = time.monotonic()
    reply = ask(server, "[[reply:a b c d]] [[slow:50]]")
    assert time.monotonic() - started >= 0.2
    assert reply.text() == "a b c d"


@pytest.mark.parametrize(
    ("marker", "status", "code", "error_type"),
    [
        ("[[status:400:context_length_exceeded]]", 400, "context_length_exceeded", "invalid_request_error"),
        ("[[status:429:rate_limit_exceeded]]", 429, "rate_limit_exceeded", "requests"),
        ("[[status:429:insufficient_quota]]", 429, "insufficient_quota", "insufficient_quota"),
        ("[[status:401:invalid_api_key]]", 401, "invalid_api_key", "invalid_request_error"),
        ("[[status:500:server_error]]", 500, "server_error", "server_error"),
        ("[[status:503]]", 503, None, "server_error"),
    ],
)
def test_status_marker_sends_openai_error(
    server: ModelServer, marker: str, status: int, code: str | None, error_type: str
) -> None:
    reply = ask(server, f"boom {marker}")
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    error = reply.error()
    assert (error["code"], error["type"]) == (code, error_type)
    assert error["message"]


@pytest.mark.parametrize("prompt", ["[[long:x]]", "[[slow:soon]]", "[[status:teapot]]"])
def test_malformed_marker_is_a_clear_400(server: ModelServer, prompt: str) -> None:
    reply = ask(server, prompt)
    assert reply.status == 400
    assert reply.error()["code"] == "invalid_marker"


def test_unknown_path_is_404(server: ModelServer) -> None:
    assert post(server, {}, path="/v1/chat/completions").status == 404
    assert server.requests[0].path == "/v1/chat/completions"


def test_incomplete_ends_with_max_output_tokens(server: ModelServer) -> None:
    reply = ask(server, "a b [[incomplete]]")
    assert reply.text() == "Echo: a b"
    final = reply.events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["usage"]["output_tokens"] == 3


def test_failed_sends_response_failed(server: ModelServer) -> None:
    reply = ask(server, "x [[failed]]")
    assert reply.types() == ["response.created", "response.failed"]
    assert reply.events[-1]["response"]["error"] == {"code": "server_error", "message": "scripted failure"}


def test_reasoning_item_precedes_the_message(server: ModelServer) -> None:
    reply = ask(server, "think [[reasoning]]")
    events = reply.events
    assert events[1]["item"]["type"] == "reasoning"
    summary = [e for e in events if e["type"] == "response.reasoning_summary_text.delta"]
    assert len(summary) == 7
    assert all(e["summary_index"] == 0 and e["item_id"] == events[1]["item"]["id"] for e in summary)
    done = next(e for e in events if e["type"] == "response.output_item.done")
    assert done["item"]["summary"] == [{"type": "summary_text", "text": "".join(e["delta"] for e in summary)}]
    message = next(e for e in events if e["type"] == "response.output_item.added" and e["output_index"] == 1)
    assert message["item"]["type"] == "message"
    assert reply.text() == "Echo: think"
    usage = reply.usage()
    assert usage["output_tokens_details"]["reasoning_tokens"] == 7
    assert usage["output_tokens"] == 2 + 7


def test_reasoning_in_announced_summary_parts(server: ModelServer) -> None:
    reply = ask(server, "think [[reasoning:2]]")
    item_id = reply.events[1]["item"]["id"]
    parts = [e for e in reply.events if e["type"].startswith("response.reasoning_summary")]
    assert all(e["item_id"] == item_id and e["output_index"] == 0 for e in parts)
    for index, text in enumerate(["Part 1 of the reasoning.", "Part 2 of the reasoning."]):
        mine = [e for e in parts if e["summary_index"] == index]
        assert [e["type"] for e in mine] == [
            "response.reasoning_summary_part.added",
            *["response.reasoning_summary_text.delta"] * 5,
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
        ]
        assert "".join(e["delta"] for e in mine[1:-2]) == mine[-2]["text"] == mine[-1]["part"]["text"] == text
    done = next(e for e in reply.events if e["type"] == "response.output_item.done")
    assert [s["text"] for s in done["item"]["summary"]] == ["Part 1 of the reasoning.", "Part 2 of the reasoning."]
    assert reply.usage()["output_tokens_details"]["reasoning_tokens"] == 10
    assert ask(server, "think [[reasoning:two]]").status == 400  # a typo shows at once


def test_tool_call_then_follow_up(server: ModelServer) -> None:
    prompt = 'go [[tool:echo "hi there"]]'
    first = ask(server, prompt)
    call = first.events[-2]["item"]
    assert first.types() == [
        "response.created",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.output_item.done",
        "response.completed",
    ]
    assert call["type"] == "function_call"
    assert call["name"] == "exec_command"
    assert json.loads(call["arguments"]) == {"cmd": 'echo "hi there"'}
    assert first.usage()["output_tokens"] == 1  # one arguments delta

    call_items = [{k: call[k] for k in ("type", "call_id", "name", "arguments")}]
    as_string = post(
        server,
        body(
            user(prompt),
            *call_items,
            {"type": "function_call_output", "call_id": call["call_id"], "output": "hi there\n" + "x" * 300},
        ),
    )
    assert as_string.text() == "Tool said: hi there\n" + "x" * 191
    as_list = post(
        server,
        body(
            user(prompt),
            *call_items,
            {
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": [{"type": "input_text", "text": "listed output"}],
            },
        ),
    )
    assert as_list.text() == "Tool said: listed output"


def function(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "description": "", "strict": False, "parameters": {"type": "object"}}


def test_call_markers_call_offered_tools_in_parallel(server: ModelServer) -> None:
    prompt = 'go [[call:get_weather {"city": "Paris"}]] [[call:get_time]]'
    first = post(server, {**body(user(prompt)), "tools": [function("get_weather"), function("get_time")]})
    calls = [e["item"] for e in first.events if e["type"] == "response.output_item.done"]
    assert [(c["type"], c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("function_call", "get_weather", {"city": "Paris"}),
        ("function_call", "get_time", {}),
    ]
    assert [e["output_index"] for e in first.events if e["type"] == "response.output_item.done"] == [0, 1]
    assert first.usage()["output_tokens"] == 2

    items = [{k: c[k] for k in ("type", "call_id", "name", "arguments")} for c in calls]
    outputs = [
        {"type": "function_call_output", "call_id": c["call_id"], "output": out}
        for c, out in zip(calls, ["sunny", [{"type": "input_text", "text": "noon"}]], strict=True)
    ]
    follow_up = post(server, body(user(prompt), *items, *outputs))
    assert follow_up.text() == "Tool get_weather returned: sunny\nTool get_time returned: noon"

    recorded = server.requests[-1]
    assert [(c.name, c.arguments) for c in recorded.function_calls()] == [
        ("get_weather", '{"city": "Paris"}'),
        ("get_time", "{}"),
    ]
    assert [(o.call_id, o.output) for o in recorded.function_outputs()] == [
        (calls[0]["call_id"], "sunny"),
        (calls[1]["call_id"], "noon"),
    ]
    assert server.requests[0].tool_names() == ["get_weather", "get_time"]


def test_a_call_to_a_tool_that_was_not_offered_is_said_in_text(server: ModelServer) -> None:
    reply = post(server, {**body(user("[[call:get_weather {}]] [[call:nope {}]]")), "tools": [function("get_weather")]})
    assert reply.text() == "Not offered: nope"


@pytest.mark.parametrize("marker", ["[[call:f [1, 2]]]", "[[call:f {nope}]]"])
def test_call_arguments_must_be_a_json_object(server: ModelServer, marker: str) -> None:
    reply = post(server, {**body(user(marker)), "tools": [function("f")]})
    assert reply.status == 400
    assert reply.error()["code"] == "invalid_marker"


def test_recorded_request_lists_tools_and_images(server: ModelServer) -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    message = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "look"}, image]}
    tools = [function("f"), {"type": "namespace", "name": "ns", "tools": [function("g")]}, {"type": "web_search"}]
    post(server, {**body(message), "tools": tools})
    [request] = server.requests
    assert request.tool_names() == ["f", "ns.g", "web_search"]
    assert request.tool("f") == function("f")
    assert request.tool("g") is None
    assert request.images() == ["data:image/png;base64,AAAA"]
    assert request.user_texts()[-1] == "look"


def test_the_command_line_serves_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "claif_cod.testing"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("export CODEX_HOME=")
        home = Path(shlex.split(line.removeprefix("export "))[0].partition("=")[2])
        config = (home / "config.toml").read_text()
        url = re.search(r'base_url = "(http://127\.0\.0\.1:\d+/v1)"', config)
        assert url is not None
        with urllib.request.urlopen(
            urllib.request.Request(
                url.group(1) + "/responses",
                json.dumps(body(user("[[reply:up]]"))).encode(),
                {"content-type": "application/json"},
            ),
            timeout=5,
        ) as response:
            assert b'"delta": "up"' in response.read()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "served 1 requests" in err
    assert not home.exists()  # the temporary home is removed


def test_usage_counts_words_and_cached_prefix_per_cache_key(server: ModelServer) -> None:
    first = ask(server, "one two three", cache_key="k").usage()
    assert first == {
        "input_tokens": PREAMBLE_WORDS + 3,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": PREAMBLE_WORDS + 3 + 4,
    }
    second = ask(server, "one two three", "Echo: one two three", "four", cache_key="k").usage()
    assert second["input_tokens"] == PREAMBLE_WORDS + 3 + 4 + 1
    assert second["input_tokens_details"]["cached_tokens"] == PREAMBLE_WORDS + 3
    diverged = ask(server, "one two changed", cache_key="k").usage()
    assert diverged["input_tokens_details"]["cached_tokens"] == PREAMBLE_WORDS + 2
    assert ask(server, "one two changed", cache_key="other").usage()["input_tokens_details"] == {"cached_tokens": 0}
    assert ask(server, "one two changed").usage()["input_tokens_details"] == {"cached_tokens": 0}


def test_flaky_drops_the_first_attempt_only(server: ModelServer) -> None:
    first = ask(server, "please work [[flaky]]")
    assert first.types() == [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
        "response.output_text.delta",
    ]
    retry = ask(server, "please work [[flaky]]")
    assert retry.text() == "Echo: please work"
    assert retry.types()[-1] == "response.completed"
    other = ask(server, "another conversation [[flaky]]")
    assert other.types()[-1] == "response.output_text.delta"


def test_sse_error_sends_an_error_event_where_the_stream_is_cut_every_time(server: ModelServer) -> None:
    for _ in range(2):  # not only the first attempt, unlike [[flaky]]
        reply = ask(server, "a b c [[sse-error:rate_limit_exceeded]]")
        assert reply.types() == [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "error",
        ]
        assert reply.events[-1] == {
            "type": "error",
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached for requests. Please try again later.",
            "param": None,
            "sequence_number": 0,
        }
    assert ask(server, "a [[sse-error]]").events[-1]["code"] == "server_error"
    prompt = "go [[call:get_weather]] [[call:get_time]] [[sse-error]]"
    calls = post(server, {**body(user(prompt)), "tools": [function("get_weather"), function("get_time")]})
    assert [e["item"]["name"] for e in calls.events if e["type"] == "response.output_item.done"] == ["get_weather"]
    assert calls.types()[-1] == "error"


def read_until_quiet(server: ModelServer, prompt: str, quiet: float) -> bytes:
    """Read a streamed answer until the server sends nothing for ``quiet`` seconds."""
    with socket.create_connection(address(server), timeout=quiet) as sock:
        payload = json.dumps(body(user(prompt))).encode()
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received
    raise AssertionError(f"the server ended the stream: {received!r}")


def test_stall_mid_sends_two_deltas_then_hangs(server: ModelServer) -> None:
    received = read_until_quiet(server, "a b c d [[stall-mid]]", quiet=0.5)
    assert received.count(b"event: response.output_text.delta") == 2
    assert b"response.output_item.done" not in received


def test_stall_sends_nothing(server: ModelServer) -> None:
    assert read_until_quiet(server, "[[stall]]", quiet=0.3) == b""


def test_stop_ends_stalled_requests_promptly() -> None:
    server = ModelServer()
    server.start()
    outcomes: list[BaseException | int] = []
    streaming = threading.Semaphore(0)

    def stalled(prompt: str) -> None:
        conn = http.client.HTTPConnection(*address(server), timeout=5)
        try:
            conn.request("POST", "/v1/responses", json.dumps(body(user(prompt))), {"content-type": "application/json"})
            response = conn.getresponse()
            streaming.release()  # its stream has begun: the handler is sending deltas or holding mid-stream
            response.read()
            outcomes.append(response.status)
        except (OSError, http.client.HTTPException) as exc:
            outcomes.append(exc)
        finally:
            conn.close()

    threads = [
        threading.Thread(target=stalled, args=(p,))
        for p in ("[[stall]]", "a b c [[stall-mid]]", "[[long:50]] [[slow:1000]]")
    ]
    for thread in threads:
        thread.start()
    server.wait_for_requests(3)  # "[[stall]]" holds once recorded, before it sends anything
    assert streaming.acquire(timeout=5) and streaming.acquire(timeout=5), "the two streams never began"
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    for thread in threads:
        thread.join(timeout=2)
    assert len(outcomes) == 3
    server.stop()  # idempotent


def request_threads() -> int:
    return sum(t.name == "claif-test-model-request" for t in threading.enumerate())


def test_client_hanging_up_releases_a_stalled_handler(server: ModelServer) -> None:
    before = request_threads()
    with pytest.raises(TimeoutError):
        post(server, body(user("[[stall]]")), timeout=0.2)
    deadline = time.monotonic() + 1
    while request_threads() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert request_threads() == before
    assert ask(server, "still serving").text() == "Echo: still serving"


def test_concurrent_requests_are_served_in_parallel(server: ModelServer) -> None:
    prompts = [f"request {i} [[slow:100]]" for i in range(8)]
    started = time.monotonic()
    with ThreadPoolExecutor(len(prompts)) as pool:
        replies = list(pool.map(lambda p: ask(server, p), prompts))
    assert time.monotonic() - started < 1.5  # sequential would take 8 * 3 * 0.1 s
    assert [r.text() for r in replies] == [f"Echo: request {i}" for i in range(8)]
    assert len(server.wait_for_requests(8)) == 8


def test_wait_for_requests_times_out(server: ModelServer) -> None:
    with pytest.raises(TimeoutError, match="expected 1 requests, got 0"):
        server.wait_for_requests(1, timeout=0.1)


def test_url_requires_a_running_server() -> None:
    server = ModelServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith("/v1")


def test_write_codex_home_config(tmp_path: Path) -> None:
    tomllib = pytest.importorskip("tomllib")
    home = write_codex_home(
        tmp_path / "home",
        "http://127.0.0.1:9/v1",
        model="o4",
        env_key="TEST_KEY",
        request_max_retries=2,
        stream_max_retries=3,
        stream_idle_timeout_ms=500,
        extra={
            "model_providers": {"claif-test": {"name": 'quote " and \\ and \n'}},
            "notify": ["a", "b\tc"],
            "weird key": True,
        },
    )
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["model_provider"] == "claif-test"
    assert config["model"] == "o4"
    assert config["project_doc_max_bytes"] == 0
    assert config["model_providers"]["claif-test"] == {
        "name": 'quote " and \\ and \n',
        "base_url": "http://127.0.0.1:9/v1",
        "wire_api": "responses",
        "request_max_retries": 2,
        "stream_max_retries": 3,
        "env_key": "TEST_KEY",
        "stream_idle_timeout_ms": 500,
    }
    assert config["notify"] == ["a", "b\tc"]
    assert config["weird key"] is True
    catalog = json.loads(Path(config["model_catalog_json"]).read_text())
    assert catalog == model_catalog()
    assert [m["slug"] for m in catalog["models"]] == ["o4-mini", "o4", "gpt-test-large"]


def test_write_codex_home_defaults_omit_optional_keys(tmp_path: Path) -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((write_codex_home(tmp_path, "http://h/v1") / "config.toml").read_text())
    assert config["model"] == "o4-mini"
    assert config["model_providers"]["claif-test"] == {
        "name": "claif-test",
        "base_url": "http://h/v1",
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
    }


def test_codex_home_fixture_exports_codex_home(codex_home: Path, codex_model_server: ModelServer) -> None:
    assert os.environ["CODEX_HOME"] == str(codex_home)
    assert codex_model_server.url in (codex_home / "config.toml").read_text()
