"""``serve --http --sse-keepalive``: a stream's silences get SSE comments, and a late first event no longer
holds back the stream's status and headers, so that a proxy in front of the endpoint does not cut a turn
that works in silence.

The silence is a command the model runs (``[[tool:...]]``) that waits for a file the test creates once it
has seen what it expects on the wire (a hook on the bytes as the client reads them): no test sleeps.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import openai
import pytest
from chat_messages import user
from openai.types.responses import ResponseFailedEvent
from test_http_endpoint import HttpDaemon, start_http_daemon

pytestmark = pytest.mark.codex

KEEP_ALIVE = b": keep-alive\n\n"
WAIT_FOR_FLAG = "[[tool:for i in $(seq 600); do [ -e flag ] && break; sleep 0.05; done; echo waited]]"
"""Codex runs this (in the working directory) until the test creates ``flag``, 30 s at most: a test whose
flag never comes fails, rather than hangs."""


class Tap(httpx2.BaseTransport):
    """httpx's own transport, with ``on_read`` told each piece of a response body as its reader takes it
    (everything read so far), and ``on_headers`` told when a response's status and headers have come."""

    def __init__(self, on_read: Callable[[bytes], None], on_headers: Callable[[], None] = lambda: None) -> None:
        self._inner = httpx2.HTTPTransport()
        self._on_read = on_read
        self._on_headers = on_headers
        self.raw = b""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        self._on_headers()
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tapped(response, self),
            extensions=response.extensions,
        )

    def read(self, piece: bytes) -> None:
        self.raw += piece
        self._on_read(self.raw)

    def close(self) -> None:
        self._inner.close()


class _Tapped(httpx2.SyncByteStream):
    def __init__(self, response: httpx2.Response, tap: Tap) -> None:
        self._response = response
        self._tap = tap

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._response.stream:  # type: ignore[union-attr]
            self._tap.read(piece)
            yield piece

    def close(self) -> None:
        self._response.close()


def client_with(http: HttpDaemon, tap: Tap, **options: object) -> openai.OpenAI:
    return http.client(http_client=httpx2.Client(transport=tap), **options)


def said_by_the_command(reply: str) -> str:
    """The command's output, from the model's ``Tool said: <what Codex told it>``."""
    assert reply.startswith("Tool said: "), reply
    return reply.rpartition("Output:\n")[2].strip()


def comments_after(raw: bytes, marker: bytes) -> int:
    """How many keep-alive comments came after ``marker`` (and before what followed them)."""
    _, found, rest = raw.partition(marker)
    return rest.count(KEEP_ALIVE) if found else 0


@pytest.fixture
def keepalive_http(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[HttpDaemon]:
    process = start_http_daemon(daemon_env, tmp_path, "--sse-keepalive", "0.2")
    yield HttpDaemon(process, workdir)
    process.stop()


# --- (a) a silence after the first event ------------------------------------------------------------


def test_a_silence_after_the_first_event_gets_comments_and_the_sdk_reads_on(keepalive_http: HttpDaemon) -> None:
    """The model runs a command: the response has begun (``response.created``), then nothing comes
    while the command runs, but comments; the SDK skips them and reads the whole response."""
    flag = keepalive_http.workdir / "flag"

    def on_read(raw: bytes) -> None:
        if comments_after(raw, b"event: response.in_progress") >= 2:
            flag.touch()

    tap = Tap(on_read)
    stream = client_with(keepalive_http, tap).responses.create(
        model="o4-mini", input=f"{WAIT_FOR_FLAG} go", stream=True
    )
    events = list(stream)
    assert flag.exists()
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"
    assert said_by_the_command(events[-1].response.output_text) == "waited"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # the comments came during the command's silence, between the response's opening and its message
    before_message = tap.raw.partition(b"event: response.output_item.added")[0]
    assert comments_after(before_message, b"event: response.in_progress") >= 2


# --- (b) a first event that comes late ----------------------------------------------------------------


def test_a_late_first_event_gets_the_headers_and_comments_first(keepalive_http: HttpDaemon) -> None:
    """Chat says nothing while the command runs (its first chunk is the answer): the status and headers,
    the ignored parameters' among them, come at once, then comments, then the chunks."""
    flag = keepalive_http.workdir / "flag"
    flag_at_headers: list[bool] = []

    def on_read(raw: bytes) -> None:
        if b"data:" not in raw and raw.count(KEEP_ALIVE) >= 2:
            flag.touch()

    tap = Tap(on_read, on_headers=lambda: flag_at_headers.append(flag.exists()))
    raw = client_with(keepalive_http, tap).chat.completions.with_raw_response.create(
        model="o4-mini", messages=[user(f"{WAIT_FOR_FLAG} go")], stream=True, temperature=1
    )
    assert flag_at_headers == [False]  # the headers came before the command could end
    assert raw.http_response.status_code == 200
    assert raw.headers["x-claif-cod-ignored-params"] == "temperature"
    chunks = list(raw.parse())
    assert said_by_the_command("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == "waited"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert tap.raw.startswith(KEEP_ALIVE + KEEP_ALIVE)
    assert tap.raw.endswith(b"data: [DONE]\n\n")


# --- (c) failures: after the stream began, an event; before, a status ---------------------------------


def test_a_chat_failing_after_its_stream_began_ends_with_an_error_event(keepalive_http: HttpDaemon) -> None:
    flag = keepalive_http.workdir / "flag"

    def on_read(raw: bytes) -> None:
        if raw.count(KEEP_ALIVE) >= 2:
            flag.touch()

    tap = Tap(on_read)
    stream = client_with(keepalive_http, tap).chat.completions.create(
        model="o4-mini", messages=[user(f"{WAIT_FOR_FLAG} [[failed-after-tool]] go")], stream=True
    )
    with pytest.raises(openai.APIError, match="scripted failure") as failed:
        list(stream)
    assert not isinstance(failed.value, openai.APIStatusError)  # raised from the stream, after a 200
    assert flag.exists()
    events = [block for block in tap.raw.split(b"\n\n") if block]
    assert events[:2] == [b": keep-alive"] * 2
    assert json.loads(events[-1].removeprefix(b"data: "))["error"]["message"].endswith("scripted failure")


def test_a_response_failing_after_its_stream_began_ends_with_response_failed(keepalive_http: HttpDaemon) -> None:
    """The model never answers ([[stall]]); the turn's deadline (the SDK's read timeout, less a tenth)
    passes after the stream began: ``response.failed``, opened as every Responses stream is, which the
    SDK's stream helper accepts. The SDK itself never timed out: the comments kept its reads busy."""
    client = client_with(keepalive_http, Tap(lambda raw: None), timeout=2.0)
    with client.responses.stream(model="o4-mini", input="[[stall]] never answered") as stream:
        events = list(stream)
    assert [e.type for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert [e.sequence_number for e in events] == [0, 1, 2]
    assert isinstance(events[-1], ResponseFailedEvent)
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None and "timeout" in failed.error.message
    with pytest.raises(openai.NotFoundError):  # it failed before the model began: nothing was kept
        client.responses.retrieve(failed.id)


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_an_early_failure_is_still_an_http_status(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path, api: str
) -> None:
    """Within ``--sse-keepalive`` (here its default, 15 s), a streamed request Codex fails is a status."""
    process = start_http_daemon(daemon_env, tmp_path)
    try:
        client = HttpDaemon(process, workdir).client()
        prompt = "[[status:429:rate_limit_exceeded]] hi"
        create: Callable[[], object] = (
            (lambda: client.chat.completions.create(model="o4-mini", messages=[user(prompt)], stream=True))
            if api == "chat"
            else (lambda: client.responses.create(model="o4-mini", input=prompt, stream=True))
        )
        with pytest.raises(openai.RateLimitError):
            create()
    finally:
        process.stop()


# --- (d) --sse-keepalive 0: as before -----------------------------------------------------------------


def test_keepalive_0_sends_nothing_before_the_first_event(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    process = start_http_daemon(daemon_env, tmp_path, "--sse-keepalive", "0")
    try:
        http = HttpDaemon(process, workdir)
        done = workdir / "done"
        done_at_headers: list[bool] = []
        tap = Tap(lambda raw: None, on_headers=lambda: done_at_headers.append(done.exists()))
        client = client_with(http, tap, default_headers={"X-Claif-Cod-Sandbox": "workspace-write"})
        stream = client.chat.completions.create(
            model="o4-mini", messages=[user("[[tool:sleep 1 && touch done && echo slept]] go")], stream=True
        )
        assert done_at_headers == [True]  # the status and headers waited for the command, and its answer
        assert said_by_the_command("".join(c.choices[0].delta.content or "" for c in stream if c.choices)) == "slept"
        assert KEEP_ALIVE not in tap.raw and tap.raw.startswith(b"data: ")
    finally:
        process.stop()


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_drain_after_the_stream_began_ends_it_with_an_event(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path, api: str
) -> None:
    """A stream begun before its first event, still waiting for it when the daemon stops: its last event
    says so, as a stream's that had begun with its first event does."""
    process = start_http_daemon(daemon_env, tmp_path, "--sse-keepalive", "0.2", "--drain-timeout", "0.5")
    client = HttpDaemon(process, workdir).client()
    prompt = "[[stall]] never answered"
    assert process.proc is not None
    if api == "chat":
        stream = client.chat.completions.create(model="o4-mini", messages=[user(prompt)], stream=True)
        process.proc.send_signal(signal.SIGTERM)  # the stream has begun: create() returned
        with pytest.raises(openai.APIError, match="shutting down"):
            list(stream)
    else:
        responses = client.responses.create(model="o4-mini", input=prompt, stream=True)
        process.proc.send_signal(signal.SIGTERM)
        events = list(responses)
        assert [e.type for e in events] == ["response.created", "response.in_progress", "response.failed"]
        assert isinstance(events[-1], ResponseFailedEvent) and events[-1].response.error is not None
        assert "shutting down" in events[-1].response.error.message
    assert process.proc.wait(timeout=30) == 0
