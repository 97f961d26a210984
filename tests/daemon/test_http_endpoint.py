"""``claif-codd serve --http``: the OpenAI REST API, through the real ``openai`` SDK and ``curl``.

Each test runs a real daemon with ``--http 127.0.0.1:0`` (the port is read back from
``daemon.status``), the real Codex binary and the offline model. Answers are compared with what
the same request gets through the socket, and sessions are shared between the two.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.client import HTTPConnection
from pathlib import Path

import openai
import pytest
from chat_messages import user
from daemon_process import DaemonProcess

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


class HttpDaemon:
    def __init__(self, process: DaemonProcess, workdir: Path) -> None:
        self.process = process
        self.workdir = workdir
        url = process.status().http
        assert url is not None and url.startswith("http://127.0.0.1:")
        self.url = url

    def client(self, **kwargs: object) -> openai.OpenAI:
        options: dict[str, object] = {"base_url": self.url + "/v1", "api_key": "unused", "max_retries": 0}
        return openai.OpenAI(**{**options, **kwargs})  # type: ignore[arg-type]

    def curl(self, *args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["curl", "-sS", "--max-time", "30", *args], capture_output=True, text=True, check=True, user=user
        )

    def wait_idle(self) -> None:
        deadline = time.monotonic() + 10
        while self.process.status().turns_in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.process.status().turns_in_flight == 0


def start_http_daemon(daemon_env: dict[str, str], tmp_path: Path, *extra: str) -> DaemonProcess:
    process = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]),
        state_dir=tmp_path / "state",
        log=tmp_path / "codd.log",
        env=daemon_env,
    )
    process.start("--http", "127.0.0.1:0", "--http-working-dir", str(tmp_path / "work"), *extra)
    return process


@pytest.fixture
def http(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[HttpDaemon]:
    process = start_http_daemon(daemon_env, tmp_path)
    yield HttpDaemon(process, workdir)
    process.stop()


# --- the OpenAI API, as the SDK sees it -------------------------------------------------------------


def test_sdk_answers_match_the_socket(http: HttpDaemon, codex_model_server: ModelServer) -> None:
    messages = [user("one two three")]
    via_http = http.client().chat.completions.create(model="o4-mini", messages=messages)  # type: ignore[arg-type]
    with CodexClient(daemon="require", working_dir=str(http.workdir)) as client:
        via_socket = client.chat.completions.create(model="o4-mini", messages=messages)  # type: ignore[arg-type]
    for completion in (via_http, via_socket):
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.content == "Echo: one two three"
        assert completion.choices[0].finish_reason == "stop"
    assert via_http.usage == via_socket.usage
    assert via_http.usage is not None and via_http.usage.completion_tokens == 4
    # Both really ran a fresh turn in the same working directory: two model requests, same input.
    first, second = codex_model_server.requests
    assert first.messages() == second.messages() == [("user", "one two three")]


def test_sdk_streams_chunks_and_usage(http: HttpDaemon) -> None:
    stream = http.client().chat.completions.create(
        model="o4-mini", messages=[user("alpha beta gamma")], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: alpha beta gamma"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4  # one delta per word
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


async def test_async_sdk_runs_concurrent_requests(http: HttpDaemon) -> None:
    async with openai.AsyncOpenAI(base_url=http.url + "/v1", api_key="unused", max_retries=0) as client:
        replies = await asyncio.gather(
            *(client.chat.completions.create(model="o4-mini", messages=[user(f"[[barrier:3]] n{i}")]) for i in range(3))
        )
    assert sorted(r.choices[0].message.content or "" for r in replies) == ["Echo: n0", "Echo: n1", "Echo: n2"]


def test_n_choices_and_ignored_params_header(http: HttpDaemon) -> None:
    raw = http.client().chat.completions.with_raw_response.create(
        model="o4-mini", messages=[user("twice")], n=2, temperature=0.2
    )
    assert raw.headers["x-claif-cod-ignored-params"] == "temperature"
    completion = raw.parse()
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.message.content == "Echo: twice" for c in completion.choices)


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_key_that_is_no_plain_name_is_percent_encoded_in_the_header(http: HttpDaemon, stream: bool) -> None:
    """A newline in a body's key made the header unsendable: a 500 (a stream begun early went out
    with no status line at all)."""
    raw = http.client().chat.completions.with_raw_response.create(
        model="o4-mini", messages=[user("odd key")], stream=stream, extra_body={"a\nb,c": 1, "top_k": 2}
    )
    assert raw.headers["x-claif-cod-ignored-params"] == "a%0Ab%2Cc,top_k"
    raw.parse()


def test_a_retired_approval_value_is_mapped_and_said_in_the_log(http: HttpDaemon) -> None:
    client = http.client(default_headers={"X-Claif-Cod-Approval-Policy": "on-failure"})
    response = client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert response.choices[0].message.content == "Echo: hi"
    [line] = [line for line in http.process.log.read_text().splitlines() if "http.request_warning" in line]
    assert "approval_policy='on-failure' is not accepted" in line
    assert response._request_id and response._request_id in line


def test_models_list_and_retrieve(http: HttpDaemon) -> None:
    client = http.client()
    ids = [m.id for m in client.models.list()]
    with CodexClient(daemon="require", working_dir=str(http.workdir)) as socket_client:
        assert ids == [m.id for m in socket_client.models.list()]
    assert ids and client.models.retrieve(ids[0]).id == ids[0]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_errors_raise_openai_classes(http: HttpDaemon) -> None:
    client = http.client()
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        client.chat.completions.create(model="o4-mini", messages=[user("[[status:401:invalid_api_key]] hi")])
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="o4-mini", messages=[user("[[status:429:rate_limit_exceeded]] hi")])
    # The error types OpenAI's API gives (not "authentication_error" or "rate_limit_error").
    assert (unauthorized.value.type, unauthorized.value.code) == ("invalid_request_error", "invalid_api_key")
    assert (limited.value.type, limited.value.code) == ("requests", "rate_limit_exceeded")
    with pytest.raises(openai.BadRequestError, match="Invalid 'messages': empty array"):
        client.chat.completions.create(model="o4-mini", messages=[])
    with pytest.raises(openai.BadRequestError) as toolless:
        client.chat.completions.create(model="o4-mini", messages=[user("hi")], tool_choice="none")
    assert (toolless.value.param, toolless.value.code) == ("tool_choice", None)
    with pytest.raises(openai.BadRequestError, match="strict mode"):
        client.chat.completions.create(
            model="o4-mini", messages=[user("hi")], temperature=1, extra_body={"strict": True}
        )
    # The daemon is unharmed by all of that.
    reply = client.chat.completions.create(model="o4-mini", messages=[user("ok")])
    assert reply.choices[0].message.content == "Echo: ok"


def test_failure_mid_stream_is_an_sse_error_event(http: HttpDaemon) -> None:
    # [[flaky]] drops the model's connection after two deltas; Codex does not retry in the test home.
    stream = http.client().chat.completions.create(model="o4-mini", messages=[user("[[flaky]] x y z")], stream=True)
    received: list[str] = []

    def read_all() -> None:
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream)

    with pytest.raises(openai.APIError) as info:
        read_all()
    assert "".join(received) == "Echo: x"  # the two deltas arrived before the failure
    assert not isinstance(info.value, openai.APIStatusError)  # raised from the stream, after a 200


# --- sessions shared with the socket --------------------------------------------------------------------


def test_named_session_is_shared_between_socket_and_http(http: HttpDaemon, codex_model_server: ModelServer) -> None:
    with CodexClient(daemon="require", working_dir=str(http.workdir), session_id="shared") as client:
        client.chat.completions.create(model="o4-mini", messages=[user("remember apples")])
    reply = http.client().chat.completions.create(
        model="o4-mini", messages=[user("what did I say")], extra_body={"session_id": "shared"}
    )
    assert reply.choices[0].message.content == "[turn 2] Echo: what did I say"  # the model saw turn 1
    assert codex_model_server.requests[-1].messages() == [
        ("user", "remember apples"),
        ("assistant", "Echo: remember apples"),
        ("user", "what did I say"),
    ]
    listing = subprocess.run(
        [sys.executable, "-m", "claif_codd", "sessions", "--json", "--socket", str(http.process.socket)],
        capture_output=True,
        text=True,
        check=True,
        env=http.process.env,
    )
    [entry] = json.loads(listing.stdout)
    assert entry["session_id"] == "shared" and entry["turns"] == 2


def test_history_continues_the_warm_thread(http: HttpDaemon, codex_model_server: ModelServer) -> None:
    client = http.client()
    messages = [user("first")]
    reply = client.chat.completions.create(model="o4-mini", messages=messages)  # type: ignore[arg-type]
    messages += [{"role": "assistant", "content": reply.choices[0].message.content or ""}, user("second")]
    client.chat.completions.create(model="o4-mini", messages=messages)  # type: ignore[arg-type]
    assert [p.pid for p in http.process.status().processes] and sum(
        p.threads for p in http.process.status().processes
    ) == 1
    assert codex_model_server.requests[-1].messages() == [
        ("user", "first"),
        ("assistant", "Echo: first"),
        ("user", "second"),
    ]


def test_working_dir_header_chooses_where_codex_runs(http: HttpDaemon, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    client = http.client(default_headers={"X-Claif-Cod-Working-Dir": str(elsewhere)})
    client.chat.completions.create(model="o4-mini", messages=[user("hi")])
    assert [p.working_dir for p in http.process.status().processes] == [str(elsewhere)]
    with pytest.raises(openai.BadRequestError, match="absolute path"):
        http.client(default_headers={"X-Claif-Cod-Working-Dir": "relative/dir"}).chat.completions.create(
            model="o4-mini", messages=[user("hi")]
        )


# --- curl ---------------------------------------------------------------------------------------------


@needs_curl
def test_curl_streams_sse_ending_in_done(http: HttpDaemon) -> None:
    body = json.dumps({"model": "o4-mini", "stream": True, "messages": [user("via curl")]})
    out = http.curl("-N", "-H", "Content-Type: application/json", "-d", body, http.url + "/v1/chat/completions")
    events = [block for block in out.stdout.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Echo: via curl"
    plain = json.loads(
        http.curl(
            "-H",
            "Content-Type: application/json",
            "-d",
            body.replace('"stream": true', '"stream": false'),
            http.url + "/v1/chat/completions",
        ).stdout
    )
    assert plain["choices"][0]["message"]["content"] == "Echo: via curl"


@needs_curl
def test_curl_sees_health_and_json_errors(http: HttpDaemon) -> None:
    health = json.loads(http.curl(http.url + "/healthz").stdout)
    assert health["status"] == "ok" and health["pid"] == http.process.proc.pid  # type: ignore[union-attr]
    missing = http.curl("-w", "\n%{http_code}", http.url + "/v1/nothing-here").stdout.rsplit("\n", 1)
    assert missing[1] == "404" and json.loads(missing[0])["error"]["code"] == "unknown_url"
    broken = http.curl("-w", "\n%{http_code}", "-d", "{not json", http.url + "/v1/chat/completions").stdout
    body, code = broken.rsplit("\n", 1)
    assert code == "400" and "not valid JSON" in json.loads(body)["error"]["message"]
    deep = "[" * 3000 + "]" * 3000  # deeper than Python's recursion limit, which msgspec keeps to
    for path, body_text in [
        ("/v1/chat/completions", f'{{"model": "o4-mini", "messages": [], "metadata": {deep}}}'),
        ("/v1/responses", f'{{"model": "o4-mini", "input": "hi", "stream": true, "unknown": {deep}}}'),
    ]:
        nested = http.curl("-w", "\n%{http_code}", "-d", body_text, http.url + path).stdout
        body, code = nested.rsplit("\n", 1)
        assert code == "400" and json.loads(body)["error"]["type"] == "invalid_request_error", nested[-300:]
    wrong_method = http.curl("-w", "\n%{http_code}", http.url + "/v1/chat/completions").stdout.rsplit("\n", 1)
    assert wrong_method[1] == "405" and json.loads(wrong_method[0])["error"]["code"] == "method_not_allowed"
    allow = http.curl("-o", "/dev/null", "-D", "-", "-X", "PUT", http.url + "/v1/chat/completions").stdout
    assert "\nallow: post\n" in allow.lower(), allow


@needs_curl
@pytest.mark.parametrize("header", ["X-Stainless-Read-Timeout", "X-Stainless-Timeout"])  # Python's, Node's
def test_the_sdks_timeout_header_interrupts_the_turn_with_504(http: HttpDaemon, header: str) -> None:
    body = json.dumps({"model": "o4-mini", "messages": [user("[[stall]] never answered")]})
    out = http.curl("-w", "\n%{http_code}", "-H", f"{header}: 1", "-d", body, http.url + "/v1/chat/completions").stdout
    reply, code = out.rsplit("\n", 1)
    assert code == "504" and json.loads(reply)["error"]["type"] == "timeout"
    assert f"(from {header}: 1 s, less 0.1 s to answer before the client does)" in json.loads(reply)["error"]["message"]
    http.wait_idle()


def test_a_stream_outlives_the_sdks_read_timeout_while_it_streams(http: HttpDaemon) -> None:
    """The SDK's read timeout bounds each read of a stream, not the whole stream: so does the daemon."""
    client = http.client().with_options(timeout=1.2)
    paced = [user("[[long:10]] [[slow:300]] count")]  # ~3 s in all, 0.3 s between words
    stream = client.chat.completions.create(model="o4-mini", messages=paced, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == " ".join(
        f"w{i}" for i in range(1, 11)
    )
    with pytest.raises(openai.InternalServerError) as ended:  # the daemon's 504, just before the SDK gives up
        client.chat.completions.create(model="o4-mini", messages=paced)
    assert ended.value.status_code == 504 and ended.value.type == "timeout"
    http.wait_idle()


def test_the_sdk_does_not_run_a_turn_that_acted_again(http: HttpDaemon, codex_model_server: ModelServer) -> None:
    """A turn that ran a command and then failed is answered with ``x-should-retry: false``: the
    SDK's own retries do not run it (and its command) again. One that did nothing may be retried."""
    client = http.client(max_retries=2)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="o4-mini", messages=[user("[[tool:echo ran]] [[failed-after-tool]] go")])
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert len(codex_model_server.requests) == 2  # the command's call and its follow-up, once
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="o4-mini", messages=[user("[[status:429:rate_limit_exceeded]] x")])
    assert "x-should-retry" not in limited.value.response.headers
    assert len(codex_model_server.requests) == 5  # tried three times, as OpenAI's would be


def test_every_answer_names_its_request(http: HttpDaemon) -> None:
    """``x-request-id``, as OpenAI's answers carry it: the SDK's ``request_id``."""
    client = http.client()
    plain = client.chat.completions.with_raw_response.create(model="o4-mini", messages=[user("hi")])
    with client.chat.completions.with_streaming_response.create(
        model="o4-mini", messages=[user("hi")], stream=True
    ) as streamed:
        streamed_id = streamed.request_id
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_nope")
    ids = [plain.request_id, streamed_id, missing.value.request_id, client.models.with_raw_response.list().request_id]
    assert all(i is not None and i.startswith("req_") for i in ids) and len(set(ids)) == 4, ids


def test_oversized_body_is_refused_with_413(http: HttpDaemon) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        http.client().chat.completions.create(model="o4-mini", messages=[user("x" * (17 * 2**20))])
    assert info.value.status_code == 413
    assert info.value.code == "request_too_large"
    assert info.value.message.endswith(
        "The request is larger than 16777216 bytes, the most claif-codd takes (send less)"
    )


# --- who may connect ---------------------------------------------------------------------------------


@needs_curl
def test_web_pages_and_foreign_host_names_are_refused(http: HttpDaemon) -> None:
    def status_of(*headers: str) -> tuple[int, dict[str, object]]:
        args = [a for h in headers for a in ("-H", h)]
        body, code = http.curl("-w", "\n%{http_code}", *args, http.url + "/v1/models").stdout.rsplit("\n", 1)
        return int(code), json.loads(body)

    code, body = status_of("Origin: https://evil.example")
    assert code == 403 and body["error"]["code"] == "origin_refused"  # type: ignore[index]
    code, body = status_of("Host: evil.example")  # DNS rebinding: a page's own name pointing at 127.0.0.1
    assert code == 403 and body["error"]["code"] == "host_refused"  # type: ignore[index]
    assert status_of("Host: localhost")[0] == 200


@needs_curl
@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another local user")
def test_another_local_user_is_refused_without_a_token(http: HttpDaemon) -> None:
    nobody = 65534
    out = http.curl("-w", "\n%{http_code}", http.url + "/v1/models", user=nobody).stdout
    body, code = out.rsplit("\n", 1)
    assert code == "403" and json.loads(body)["error"]["code"] == "peer_refused"
    assert json.loads(http.curl(http.url + "/healthz", user=nobody).stdout)["status"] == "ok"


def test_bearer_token_is_required_when_configured(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    token_file.chmod(0o600)
    process = start_http_daemon(daemon_env, tmp_path, "--http-token-file", str(token_file))
    try:
        http = HttpDaemon(process, workdir)
        for wrong in ("unused", "s3cret-tokenX"):
            with pytest.raises(openai.AuthenticationError) as info:
                http.client(api_key=wrong).models.list()
            assert (info.value.type, info.value.code) == ("invalid_request_error", "invalid_api_key")  # OpenAI's
        reply = http.client(api_key="s3cret-token").chat.completions.create(model="o4-mini", messages=[user("t")])
        assert reply.choices[0].message.content == "Echo: t"
        assert "s3cret" not in process.log.read_text()
    finally:
        process.stop()


def raw_post(url: str, path: str, body: dict[str, object], headers: dict[str, bytes]) -> tuple[int, str, str]:
    """A POST with header bytes no SDK sends (not UTF-8): its status, Content-Type and body."""
    host, port = url.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=30)
    try:
        payload = json.dumps(body).encode()
        connection.putrequest("POST", path)
        for name, value in {"Content-Type": b"application/json", **headers}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(payload)))
        connection.endheaders(payload)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type") or "", answer.read().decode()
    finally:
        connection.close()


def test_header_bytes_that_are_not_utf8_are_refused_not_a_server_error(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    token_file.chmod(0o600)
    process = start_http_daemon(daemon_env, tmp_path, "--http-token-file", str(token_file))
    try:
        url = HttpDaemon(process, workdir).url
        chat = {"model": "o4-mini", "messages": [user("hi")]}
        status, _, body = raw_post(url, "/v1/chat/completions", chat, {"Authorization": b"Bearer \xff\xfe"})
        assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
        where = {"Authorization": b"Bearer s3cret-token", "X-Claif-Cod-Working-Dir": b"/tmp/\xff"}
        status, _, body = raw_post(url, "/v1/chat/completions", chat, where)
        assert status == 400 and "X-Claif-Cod-Working-Dir must be UTF-8" in json.loads(body)["error"]["message"]
    finally:
        process.stop()
    assert "http.handler_failed" not in process.log.read_text()


def test_an_event_stream_says_it_is_utf8(http: HttpDaemon) -> None:
    """Else a client reading it as text/* without a charset (requests: ISO-8859-1) garbles non-ASCII."""
    chat = {"model": "o4-mini", "messages": [user("héllo 日本")], "stream": True}
    status, content_type, body = raw_post(http.url, "/v1/chat/completions", chat, {})
    assert (status, content_type) == (200, "text/event-stream; charset=utf-8")
    assert "日本" in body


def test_bad_http_settings_are_usage_errors(daemon_env: dict[str, str], tmp_path: Path) -> None:
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "claif_codd", "serve", "--socket", str(tmp_path / "s.sock"), *args],
            capture_output=True,
            text=True,
            env=daemon_env,
            timeout=30,
        )

    result = serve("--http", "0.0.0.0:0")
    assert result.returncode == 2 and "needs a bearer token" in result.stderr
    loose = tmp_path / "loose-token"
    loose.write_text("t")
    loose.chmod(0o644)
    result = serve("--http", "0", "--http-token-file", str(loose))
    assert result.returncode == 2 and "chmod 600" in result.stderr
    result = serve("--http", "example.com:80")
    assert result.returncode == 2 and "IP address" in result.stderr


def test_port_in_use_fails_the_start_and_leaves_no_socket(daemon_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = DaemonProcess(
            socket=Path(daemon_env["CLAIF_COD_SOCKET"]),
            state_dir=tmp_path / "state",
            log=tmp_path / "codd.log",
            env=daemon_env,
        )
        with pytest.raises(RuntimeError, match=r"did not start \(exit 1\)"):
            process.start("--http", f"127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in process.log.read_text() and "in use" in process.log.read_text()
    assert not process.socket.exists()


# --- turns: cancellation, load, approvals, shutdown ------------------------------------------------------


def test_client_hanging_up_interrupts_the_turn(http: HttpDaemon) -> None:
    client = http.client()
    stream = client.chat.completions.create(model="o4-mini", messages=[user("[[stall-mid]] a b c")], stream=True)
    next(iter(stream))
    stream.close()
    http.wait_idle()
    assert client.chat.completions.create(model="o4-mini", messages=[user("next")]).choices[0].message.content == (
        "Echo: next"
    )


def test_turn_limit_answers_503_with_retry_after(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> None:
    process = start_http_daemon(daemon_env, tmp_path, "--max-turns", "1")
    try:
        http = HttpDaemon(process, workdir)
        client = http.client()
        held = client.chat.completions.create(model="o4-mini", messages=[user("[[stall-mid]] hold")], stream=True)
        next(iter(held))
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="o4-mini", messages=[user("more")])
        assert info.value.status_code == 503 and info.value.response.headers["retry-after"] == "1"
        held.close()
        http.wait_idle()
        assert client.chat.completions.create(model="o4-mini", messages=[user("ok")]).choices[0].message.content
    finally:
        process.stop()


def test_turn_limit_counts_requests_whose_bodies_came_after_their_headers(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    """Both requests were checked against the limit before their bodies came, and counted after: both ran.
    ``Expect: 100-continue`` holds each body until its handler is waiting for it."""
    process = start_http_daemon(daemon_env, tmp_path, "--max-turns", "1")
    try:
        port = int(process.status().http.rsplit(":", 1)[1])  # type: ignore[union-attr]
        body = json.dumps({"model": "o4-mini", "messages": [user("[[stall-mid]] hold")], "stream": True}).encode()
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        with socket.create_connection(("127.0.0.1", port)) as one, socket.create_connection(("127.0.0.1", port)) as two:
            for connection in (one, two):
                connection.settimeout(30)
                connection.sendall(head)
                assert connection.recv(4096).startswith(b"HTTP/1.1 100 Continue")
            answers = []
            for connection in (one, two):
                connection.sendall(body)
                answers.append(connection.recv(4096).split(b"\r\n", 1)[0])
        assert sorted(answers) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 503 Service Unavailable"]
    finally:
        process.stop()


def test_approvals_over_http_are_declined(http: HttpDaemon) -> None:
    client = http.client(
        default_headers={"X-Claif-Cod-Approval-Policy": "untrusted", "X-Claif-Cod-Sandbox": "workspace-write"}
    )
    reply = client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch no.txt]] go")])
    assert "rejected" in (reply.choices[0].message.content or "")
    assert not (http.workdir / "no.txt").exists()
    # Without the untrusted policy the same command runs: the header really chose the policy.
    client = http.client(default_headers={"X-Claif-Cod-Sandbox": "workspace-write"})
    reply = client.chat.completions.create(model="o4-mini", messages=[user("[[tool:touch yes.txt]] go")])
    assert (http.workdir / "yes.txt").exists(), reply.choices[0].message.content


def test_bad_sandbox_header_is_a_bad_request(http: HttpDaemon) -> None:
    client = http.client(default_headers={"X-Claif-Cod-Sandbox": "no-such-sandbox"})
    with pytest.raises(openai.BadRequestError, match="no-such-sandbox"):
        client.chat.completions.create(model="o4-mini", messages=[user("hi")])


def test_shutdown_drains_then_ends_a_running_stream_with_an_error(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    process = start_http_daemon(daemon_env, tmp_path, "--drain-timeout", "0.5")
    http = HttpDaemon(process, workdir)
    stream = http.client().chat.completions.create(model="o4-mini", messages=[user("[[stall-mid]] a b")], stream=True)
    chunks = iter(stream)
    next(chunks)
    assert process.proc is not None
    process.proc.send_signal(signal.SIGTERM)
    with pytest.raises(openai.APIError, match="shutting down"):
        list(chunks)
    assert process.proc.wait(timeout=30) == 0


def test_start_in_the_background_with_http(daemon_env: dict[str, str], tmp_path: Path) -> None:
    socket_path = Path(daemon_env["CLAIF_COD_SOCKET"])

    def codd(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "claif_codd", *args, "--socket", str(socket_path)],
            capture_output=True,
            text=True,
            env=daemon_env,
            timeout=60,
            check=check,
        )

    started = codd("start", "--http", "127.0.0.1:0", "--http-working-dir", str(tmp_path)).stdout
    try:
        status = codd("status").stdout
        [line] = [line for line in status.splitlines() if line.startswith("http")]
        url = line.split()[1]
        assert f"HTTP endpoint: {url}\n" in started  # the port :0 took is said at once
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        assert client.chat.completions.create(model="o4-mini", messages=[user("bg")]).choices[0].message.content == (
            "Echo: bg"
        )
        _start_again_changes_nothing(codd, socket_path, url.removesuffix("/v1"))
    finally:
        codd("stop")
    assert (tmp_path / "state" / "sessions.db").exists()  # its own state dir, not the user's ~/.local/state


def _start_again_changes_nothing(
    codd: Callable[..., subprocess.CompletedProcess[str]], socket_path: Path, serving: str
) -> None:
    """A second ``start`` succeeds where the running daemon already serves what it asks for, says
    which options it did not apply, and fails where it asks for an endpoint the daemon lacks."""
    port = serving.rpartition(":")[2]
    for same in ([], ["--http", f"127.0.0.1:{port}"], ["--http", "127.0.0.1:0"]):
        again = codd("start", *same)
        assert again.stdout == f"claif-codd already running on {socket_path}\nHTTP endpoint: {serving}/v1\n"
        assert again.stderr == ""
    unapplied = codd("start", "--idle-timeout", "5", "--http", f"127.0.0.1:{port}", "--http-strict")
    assert unapplied.stderr == "claif-codd: not applied to the running daemon: --idle-timeout, --http-strict\n"
    other = codd("start", "--http", f"127.0.0.1:{int(port) + 1 if int(port) < 65535 else 1}", check=False)
    assert other.returncode == 1 and other.stdout == ""
    assert other.stderr.startswith(f"claif-codd: error: claif-codd already running on {socket_path}, serving HTTP on")


def test_start_with_http_fails_against_a_running_daemon_without_an_endpoint(daemon: DaemonProcess) -> None:
    again = subprocess.run(
        [sys.executable, "-m", "claif_codd", "start", "--http", "127.0.0.1:0", "--socket", str(daemon.socket)],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=60,
    )
    assert again.returncode == 1, again.stderr
    assert again.stderr == (
        f"claif-codd: error: claif-codd already running on {daemon.socket}, without an HTTP endpoint: "
        "stop it first (claif-codd stop) to start one serving HTTP on 127.0.0.1 (any free port)\n"
    )


# --- the examples in docs/daemon.md ---------------------------------------------------------------------

DAEMON_MD = Path(__file__).resolve().parents[2] / "docs" / "daemon.md"
DOC_URL = "http://127.0.0.1:8765"


def doc_blocks(language: str) -> list[str]:
    text = DAEMON_MD.read_text()
    section = text[text.index("## The OpenAI-compatible HTTP endpoint") :]
    section = section[: section.index("\n## ", 1)]
    return [block.split("\n", 1)[1] for block in section.split("```")[1::2] if block.startswith(language + "\n")]


@needs_curl
def test_the_documented_examples_run(http: HttpDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    [python] = doc_blocks("python")
    assert DOC_URL in python
    exec(compile(python.replace(DOC_URL, http.url), str(DAEMON_MD), "exec"), {"__name__": "daemon_md_example"})
    assert "content='Echo: hi'" in capsys.readouterr().out
    [shell] = doc_blocks("sh")
    assert shell.splitlines()[0] == "claif-codd start --http 8765"  # the fixture's daemon stands in for it
    curl = shell.split("\n", 1)[1].replace(DOC_URL, http.url)
    out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=True).stdout
    events = [e.removeprefix("data: ") for e in out.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]) == "Echo: hi"


def test_http_traffic_keeps_an_idle_timeout_daemon_alive(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    process = start_http_daemon(daemon_env, tmp_path, "--idle-timeout", "1.5")
    assert process.proc is not None
    try:
        http = HttpDaemon(process, workdir)  # its status call is the last socket connection
        client = http.client()
        for _ in range(8):  # 3.2 s of quick requests, none of them a turn, no socket client
            client.models.list()
            time.sleep(0.4)
            assert process.proc.poll() is None
        quiet = time.monotonic()
        assert process.proc.wait(timeout=30) == 0
        assert 1.0 < time.monotonic() - quiet < 10
    finally:
        process.stop()
