"""claif-codd under load: every limit answers at once with a retryable error, nothing hangs.

Each test runs a real daemon process (started with small limits through ``claif-codd serve``
flags where the default would make the test slow) and talks to it over its socket with a small
asyncio client built from ``claif_cod.protocol`` alone; Codex is the real binary and the model
is the offline one, scripted by markers in the prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from daemon_process import DaemonProcess

from claif_cod.protocol import (
    PROTOCOL_VERSION,
    CancelNotification,
    CancelParams,
    ChatCompletionsChunkNotification,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    CodexOptions,
    DaemonStatus,
    DaemonStatusRequest,
    ErrorCode,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    ModelList,
    ModelsListParams,
    ModelsListRequest,
    Notification,
    Request,
    RequestId,
    Response,
    SessionSendParams,
    SessionSendRequest,
    StreamDone,
    decode,
    decode_result,
    encode,
    encode_frame,
)
from claif_cod.transport.daemon_client import DaemonConnection
from claif_cod.transport.daemon_unusable import DaemonUnavailable

pytestmark = [pytest.mark.codex, pytest.mark.timeout(90)]

WAIT_S = 30.0
"""Upper bound for anything the daemon should answer; tests normally take a fraction of it."""
OVERLOADED = int(ErrorCode.OVERLOADED)
Reply = Response[msgspec.Raw] | ErrorResponse


# --- a protocol-only client ------------------------------------------------------------------------


class Client:
    """One socket connection; replies are routed to their request by id, chunks collected per request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        self._ids = 0
        self.replies: dict[RequestId, asyncio.Future[Reply]] = {}
        self.chunks: dict[RequestId, list[dict[str, Any]]] = {}
        self.unsolicited: list[ErrorResponse] = []
        self.eof = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, path: Path, *, hello: bool = True) -> Client:
        reader, writer = await asyncio.open_unix_connection(str(path))
        client = cls(reader, writer)
        if hello:
            reply = await client.call(hello_request(client.next_id()))
            assert isinstance(reply, Response), reply
        return client

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def send(self, *messages: Request | Notification) -> None:
        self._writer.write(b"".join(encode_frame(encode(m)) for m in messages))

    def start(self, request: Request) -> asyncio.Future[Reply]:
        future = self.replies[request.id] = asyncio.get_running_loop().create_future()
        self.chunks[request.id] = []
        self.send(request)
        return future

    async def call(self, request: Request, timeout: float = WAIT_S) -> Reply:
        return await asyncio.wait_for(self.start(request), timeout)

    async def status(self) -> DaemonStatus:
        reply = await self.call(DaemonStatusRequest(id=self.next_id()))
        assert isinstance(reply, Response), reply
        return decode_result(reply.result, DaemonStatus)

    async def chat(self, text: str, workdir: Path, timeout: float = WAIT_S) -> str:
        """A streamed chat; returns the text assembled from its chunks, checking the chunk count."""
        request = chat_request(self.next_id(), text, workdir)
        reply = await self.call(request, timeout)
        assert isinstance(reply, Response), reply
        done = decode_result(reply.result, StreamDone)
        assert done.chunks == len(self.chunks[request.id])
        return stream_text(self.chunks[request.id])

    async def _read(self) -> None:
        try:
            while data := await self._reader.read(256 * 1024):
                for body in self._decoder.feed(data):
                    self._dispatch(decode(body))
        except ConnectionError:
            pass
        finally:
            self.eof.set()
            for future in self.replies.values():
                if not future.done():
                    future.set_exception(ConnectionResetError("daemon closed the connection"))

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, (Response, ErrorResponse)):
            future = self.replies.get(message.id) if message.id is not None else None
            if future is None:
                assert isinstance(message, ErrorResponse), message
                self.unsolicited.append(message)
            elif not future.done():
                future.set_result(message)
        elif isinstance(message, ChatCompletionsChunkNotification):
            self.chunks[message.params.request_id].append(msgspec.json.decode(message.params.chunk))

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        await asyncio.wait_for(self.eof.wait(), WAIT_S)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def hello_request(request_id: int) -> HelloRequest:
    params = HelloParams(protocol_version=PROTOCOL_VERSION, package_version="test", client_name="test_limits")
    return HelloRequest(id=request_id, params=params)


def chat_request(
    request_id: RequestId, text: str, workdir: Path, *, stream: bool = True
) -> ChatCompletionsCreateRequest:
    body = {"model": "o4-mini", "stream": stream, "messages": [{"role": "user", "content": text}]}
    params = ChatCompletionsCreateParams(
        body=msgspec.Raw(msgspec.json.encode(body)), options=CodexOptions(working_dir=str(workdir))
    )
    return ChatCompletionsCreateRequest(id=request_id, params=params)


def session_request(request_id: RequestId, session: str, text: str, workdir: Path) -> SessionSendRequest:
    params = SessionSendParams(session_id=session, text=text, options=CodexOptions(working_dir=str(workdir)))
    return SessionSendRequest(id=request_id, params=params)


def stream_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def content_chunks(chunks: list[dict[str, Any]]) -> int:
    return sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content"))


def assert_overloaded(reply: Reply, *, retry_after: float | None = None, says: str = "") -> ErrorResponse:
    assert isinstance(reply, ErrorResponse), reply
    assert reply.error.code == OVERLOADED, reply.error
    assert reply.error.data is not None and reply.error.data.retry_after_s is not None, reply.error
    assert reply.error.data.retry_after_s > 0
    if retry_after is not None:
        assert reply.error.data.retry_after_s == retry_after
    assert says in reply.error.message, reply.error.message
    return reply


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def wait_for_status(client: Client, condition: Callable[..., bool], what: str) -> None:
    """Until the daemon's ``daemon.status`` answer, asked on ``client``, meets ``condition``."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition(status := await client.status()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}: {status}"
        await asyncio.sleep(0.05)


async def async_wait_until(condition: Callable[[], bool], timeout: float = WAIT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def streaming(client: Client, text: str, workdir: Path) -> asyncio.Future[Reply]:
    """A streamed chat started, once its first chunk is in: its reply to come."""
    request = chat_request(client.next_id(), text, workdir)
    reply = client.start(request)
    await async_wait_until(lambda: bool(client.chunks[request.id]), WAIT_S, "the turn to stream")
    return reply


# --- a daemon per test, with the limits the test needs ------------------------------------------------


@pytest.fixture
def start_daemon(daemon_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(*flags: str) -> DaemonProcess:
        process = DaemonProcess(
            socket=Path(daemon_env["CLAIF_COD_SOCKET"]),
            state_dir=tmp_path / "state",
            log=tmp_path / "codd.log",
            env=daemon_env,
        )
        started.append(process)
        process.start(*flags)
        return process

    yield start
    for process in started:
        if process.proc is not None and process.proc.poll() is None:
            process.stop()  # SIGTERM, so the daemon reaps its Codex children (SIGKILL only if it hangs)


def log_text(daemon: DaemonProcess) -> str:
    return daemon.log.read_text(errors="replace")


# --- 1. requests in flight per connection -------------------------------------------------------------


async def test_129th_request_in_flight_on_one_connection_is_overloaded(daemon: DaemonProcess, workdir: Path) -> None:
    """Default limit 128: 128 models.list requests wait for the first Codex process to start; the
    129th, sent in the same write, is refused at once; the 128 then all complete."""
    client = await Client.connect(daemon.socket)
    try:
        options = CodexOptions(working_dir=str(workdir))
        requests = [ModelsListRequest(id=client.next_id(), params=ModelsListParams(options)) for _ in range(129)]
        futures = [client.replies.setdefault(r.id, asyncio.get_running_loop().create_future()) for r in requests]
        client.send(*requests)  # one write: the daemon sees all 129 before any of them can finish
        sent = time.monotonic()
        refused = await asyncio.wait_for(futures[128], WAIT_S)
        assert time.monotonic() - sent < 1.0
        assert_overloaded(refused, retry_after=0.5, says="128 requests are already in flight")
        assert not any(f.done() for f in futures[:128])  # refused while the others were still in flight

        replies = await asyncio.wait_for(asyncio.gather(*futures[:128]), 60)
        assert all(isinstance(r, Response) for r in replies), [r for r in replies if isinstance(r, ErrorResponse)][:3]
        listings = [decode_result(r.result, ModelList) for r in replies if isinstance(r, Response)]
        assert all(len(listing.data) == 3 for listing in listings)

        again = await client.call(ModelsListRequest(id=client.next_id(), params=ModelsListParams(options)))
        assert isinstance(again, Response), again  # the slots were given back
    finally:
        await client.close()


@pytest.mark.parametrize("seconds", [-1.0, 0.0])
async def test_a_deadline_that_has_passed_before_the_request_is_a_400(
    daemon: DaemonProcess, workdir: Path, seconds: float
) -> None:
    """It was taken, and the turn timed out at once (408, ``APITimeoutError`` in a client): a client's
    bug reported as Codex being slow."""
    client = await Client.connect(daemon.socket)
    try:
        options = CodexOptions(working_dir=str(workdir), timeout_s=seconds)
        body = msgspec.json.encode({"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}]})
        chat = ChatCompletionsCreateRequest(
            id=client.next_id(), params=ChatCompletionsCreateParams(msgspec.Raw(body), options)
        )
        for request in (chat, ModelsListRequest(id=client.next_id(), params=ModelsListParams(options))):
            reply = await client.call(request)
            assert isinstance(reply, ErrorResponse) and reply.error.data is not None, reply
            assert reply.error.data.status_code == 400 and reply.error.data.body is not None
            assert reply.error.data.body.error.param == "timeout_s"
    finally:
        await client.close()


async def test_request_cancelled_before_it_ran_is_answered_and_frees_its_slot(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    """A $/cancel in the same read as its request: the task never starts, yet it is answered and counted out."""
    daemon = start_daemon("--max-turns", "1")
    client = await Client.connect(daemon.socket)
    try:
        request = chat_request(client.next_id(), "never runs", workdir)
        future = client.replies[request.id] = asyncio.get_running_loop().create_future()
        client.chunks[request.id] = []
        client.send(request, CancelNotification(params=CancelParams(id=request.id)))
        reply = await asyncio.wait_for(future, WAIT_S)
        assert isinstance(reply, ErrorResponse) and reply.error.code == ErrorCode.REQUEST_CANCELLED, reply
        assert await client.chat("after", workdir) == "Echo: after"  # the one turn slot is free again
    finally:
        await client.close()


# --- 2. connections per daemon ---------------------------------------------------------------------------


async def test_connection_beyond_the_limit_gets_overloaded_and_is_closed(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon = start_daemon("--max-connections", "4")
    clients = [await Client.connect(daemon.socket) for _ in range(4)]
    try:
        # A peer that says hello at once gets the error as the answer to its hello, then EOF.
        extra = await Client.connect(daemon.socket, hello=False)
        started = time.monotonic()
        hello = await extra.call(hello_request(1), timeout=5)
        assert time.monotonic() - started < 1.0
        assert_overloaded(hello, retry_after=1.0, says="maximum of 4 connections")
        await asyncio.wait_for(extra.eof.wait(), 5)  # then the daemon hangs up: no hang, no silent abort
        assert not extra.unsolicited
        await extra.close()

        # A peer that sends nothing is told anyway (id null), then closed.
        silent = await Client.connect(daemon.socket, hello=False)
        started = time.monotonic()
        await asyncio.wait_for(silent.eof.wait(), 5)
        assert time.monotonic() - started < 2.0
        [notice] = silent.unsolicited
        assert notice.id is None
        assert_overloaded(notice, retry_after=1.0, says="maximum of 4 connections")
        await silent.close()

        # What a claif_cod client sees: the handshake fails with the daemon's reason.
        with pytest.raises(DaemonUnavailable, match="maximum of 4 connections"):
            await asyncio.wait_for(DaemonConnection.open(daemon.socket), 10)

        for client in clients:  # the served connections were not disturbed
            assert (await client.status()).connections == 4

        await clients.pop().close()
        deadline = time.monotonic() + 5
        while (await clients[0].status()).connections != 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        clients.append(await Client.connect(daemon.socket))  # a freed slot is usable again
    finally:
        for client in clients:
            await client.close()
    assert "daemon.connection_refused" in log_text(daemon)


# --- 3. slow readers ------------------------------------------------------------------------------------------


async def test_slow_reader_is_dropped_without_slowing_others(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    """A client that stops reading a 20000-word stream is disconnected at its 256 KiB backlog cap while
    another client's turns keep completing as fast as before; the daemon's memory stays bounded."""
    cap = 256 * 1024
    daemon = start_daemon("--max-outbound-bytes", str(cap), "--log-format", "json")
    assert daemon.proc is not None
    fast = await Client.connect(daemon.socket)
    slow: socket.socket | None = None
    try:
        for i in range(3):  # warm the Codex process up; not timed
            assert await fast.chat(f"warm {i}", workdir) == f"Echo: warm {i}"
        baseline = []
        for i in range(8):
            started = time.monotonic()
            assert await fast.chat(f"before {i}", workdir) == f"Echo: before {i}"
            baseline.append(time.monotonic() - started)
        rss_before = rss_bytes(daemon.proc.pid)

        slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(slow, str(daemon.socket))
        await loop.sock_sendall(slow, encode_frame(encode(hello_request(1))))
        decoder = FrameDecoder()
        while not (frames := decoder.feed(await loop.sock_recv(slow, 4096))):
            pass
        assert isinstance(decode(frames[0]), Response)
        await loop.sock_sendall(slow, encode_frame(encode(chat_request(2, "[[long:20000]] [[slow:1]]", workdir))))
        # From here on the slow client never reads while the daemon streams 20000 words at it.

        during: list[float] = []
        peak_rss = rss_before
        i = 0
        while "connection.slow_reader_dropped" not in log_text(daemon) or len(during) < 8:
            assert i < 400, "the slow reader was never dropped"
            started = time.monotonic()
            assert await fast.chat(f"during {i}", workdir) == f"Echo: during {i}"
            during.append(time.monotonic() - started)
            peak_rss = max(peak_rss, rss_bytes(daemon.proc.pid))
            i += 1

        # The slow client was disconnected: what the kernel buffered for it, then EOF (or a reset).
        received = 0
        with contextlib.suppress(ConnectionError):
            while data := await asyncio.wait_for(loop.sock_recv(slow, 65536), WAIT_S):
                received += len(data)
        assert 0 < received < 8 * 2**20  # it got a fraction of the ~7 MB stream, not all of it

        [dropped] = json_lines(daemon, "connection.slow_reader_dropped")
        assert dropped["level"] == "warning" and 0 < dropped["pending_bytes"] <= cap, dropped
        assert dropped["max_outbound_bytes"] == cap and dropped["client"] == "test_limits", dropped
        # Turns of the other client kept their pace while the slow one was stalled and after.
        usual = statistics.median(baseline)
        # (Bounds are loose on purpose: the machine may be busy with other work. Head-of-line blocking
        # behind the stalled client would show up as seconds, or as a hang.)
        assert statistics.median(during) < max(3 * usual, usual + 0.5), (baseline, during)
        assert max(during) < max(20 * usual, 5.0), (baseline, during)
        # No memory blow-up: the backlog is bounded by the cap, not by the 7 MB stream.
        assert peak_rss - rss_before < 48 * 2**20, (rss_before, peak_rss)

        async def slow_turn_gone() -> bool:
            status = await fast.status()
            return status.connections == 1 and status.turns_in_flight == 0

        deadline = time.monotonic() + WAIT_S
        while not await slow_turn_gone():  # its turn was interrupted, not left streaming into the void
            assert time.monotonic() < deadline, await fast.status()
            await asyncio.sleep(0.05)
    finally:
        if slow is not None:
            slow.close()
        await fast.close()


def json_lines(daemon: DaemonProcess, event: str) -> Iterator[dict[str, Any]]:
    for line in log_text(daemon).splitlines():
        if event in line and line.startswith("{"):
            with contextlib.suppress(ValueError):
                yield json.loads(line)


# --- 4. turns in flight per daemon ----------------------------------------------------------------------------


async def test_overload_answers_at_once_instead_of_queueing(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    """With --max-turns 2 and two turns stalled, further turns get OVERLOADED immediately, from any
    connection; other methods keep working; a freed slot takes work again."""
    daemon = start_daemon("--max-turns", "2")
    a = await Client.connect(daemon.socket)
    b = await Client.connect(daemon.socket)
    try:
        stalled = [a.start(chat_request(a.next_id(), f"[[stall]] {n}", workdir)) for n in ("x", "y")]
        for client, request in (
            (a, chat_request(a.next_id(), "third", workdir)),
            (b, chat_request(b.next_id(), "fourth", workdir, stream=False)),
            (b, session_request(b.next_id(), "s", "fifth", workdir)),
        ):
            started = time.monotonic()
            reply = await client.call(request, timeout=5)
            assert time.monotonic() - started < 0.5
            assert_overloaded(reply, retry_after=1.0, says="maximum of 2 turns")
        assert not any(f.done() for f in stalled)
        assert (await b.status()).connections == 2  # non-turn methods are not refused

        a.send(CancelNotification(params=CancelParams(id=1 + 1)))  # cancel the first stalled turn (id 2)
        cancelled = await asyncio.wait_for(stalled[0], WAIT_S)
        assert isinstance(cancelled, ErrorResponse) and cancelled.error.code == ErrorCode.REQUEST_CANCELLED
        assert await b.chat("room again", workdir) == "Echo: room again"
        a.send(CancelNotification(params=CancelParams(id=3)))
        await asyncio.wait_for(stalled[1], WAIT_S)
    finally:
        await a.close()
        await b.close()
    assert "connection.overloaded" in log_text(daemon)


# --- 5. SIGTERM drains ----------------------------------------------------------------------------------------


async def test_sigterm_lets_turns_finish_until_the_drain_deadline(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    """--drain-timeout 2: a 1.2 s turn completes; a 7 s turn is answered "shutting down" at the deadline;
    new work meanwhile is refused with OVERLOADED; the daemon exits 0 and removes its socket."""
    daemon = start_daemon("--drain-timeout", "2")
    assert daemon.proc is not None
    short = await Client.connect(daemon.socket)
    long = await Client.connect(daemon.socket)
    try:
        short_request = chat_request(short.next_id(), "[[slow:300]] a b c", workdir)
        long_request = chat_request(long.next_id(), "[[slow:1000]] a b c d e f", workdir)
        short_reply, long_reply = short.start(short_request), long.start(long_request)
        await async_wait_until(
            lambda: bool(short.chunks[short_request.id]) and bool(long.chunks[long_request.id]),
            WAIT_S,
            "both turns to stream",
        )
        daemon.proc.send_signal(signal.SIGTERM)
        sigterm = time.monotonic()
        await async_wait_until(lambda: "daemon.draining" in log_text(daemon), 5, "the drain to start")

        refused = await short.call(chat_request(short.next_id(), "too late", workdir), timeout=5)
        assert_overloaded(refused, says="shutting down")
        with pytest.raises(ConnectionRefusedError):  # the listener is closed: no new connections while draining
            await Client.connect(daemon.socket)

        done = await asyncio.wait_for(short_reply, WAIT_S)
        assert isinstance(done, Response), done  # finished normally within the deadline
        assert stream_text(short.chunks[short_request.id]) == "Echo: a b c"
        assert time.monotonic() - sigterm < 2.0

        cut = await asyncio.wait_for(long_reply, WAIT_S)
        waited = time.monotonic() - sigterm
        assert_overloaded(cut, says="claif-codd is shutting down")
        assert "the 2 s drain deadline" in cut.error.message
        assert 1.5 < waited < 5.0, waited

        await asyncio.wait_for(short.eof.wait(), WAIT_S)
        await asyncio.wait_for(long.eof.wait(), WAIT_S)
        assert await asyncio.to_thread(daemon.proc.wait, WAIT_S) == 0
        assert not daemon.socket.exists()
    finally:
        await short.close()
        await long.close()
    assert "daemon.drain_timeout" in log_text(daemon)


async def test_sighup_drains_as_sigterm_does(start_daemon: Callable[..., DaemonProcess], workdir: Path) -> None:
    """``serve`` run in a terminal gets SIGHUP when the terminal closes: its turns finish first."""
    daemon = start_daemon("--drain-timeout", "60")
    assert daemon.proc is not None
    client = await Client.connect(daemon.socket)
    try:
        reply = await streaming(client, "[[slow:300]] a b c", workdir)
        daemon.proc.send_signal(signal.SIGHUP)
        await async_wait_until(lambda: "daemon.draining" in log_text(daemon), 5, "the drain to start")
        daemon.proc.send_signal(signal.SIGHUP)  # a closing terminal may send two: the drain goes on
        done = await asyncio.wait_for(reply, WAIT_S)
        assert isinstance(done, Response), done
        assert await asyncio.to_thread(daemon.proc.wait, WAIT_S) == 0
        assert not daemon.socket.exists()
    finally:
        await client.close()
    assert "daemon.signal" in log_text(daemon) and "signal=SIGHUP" in log_text(daemon)


async def test_second_sigterm_cuts_the_drain_short(start_daemon: Callable[..., DaemonProcess], workdir: Path) -> None:
    daemon = start_daemon("--drain-timeout", "60")
    assert daemon.proc is not None
    client = await Client.connect(daemon.socket)
    try:
        reply = await streaming(client, "[[slow:1000]] a b c d e f g h", workdir)
        daemon.proc.send_signal(signal.SIGTERM)
        await async_wait_until(lambda: "daemon.draining" in log_text(daemon), 5, "the drain to start")
        daemon.proc.send_signal(signal.SIGTERM)
        second = time.monotonic()
        cut = await asyncio.wait_for(reply, WAIT_S)
        assert time.monotonic() - second < 3.0
        assert_overloaded(cut, says="a second signal cut the drain short")
        assert await asyncio.to_thread(daemon.proc.wait, WAIT_S) == 0
        assert not daemon.socket.exists()
    finally:
        await client.close()
    assert "daemon.drain_cut_short" in log_text(daemon)


async def test_stop_reports_a_daemon_still_draining_after_its_wait(
    start_daemon: Callable[..., DaemonProcess], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``claif-codd stop`` says the daemon is still draining (exit status 1) rather than "stopped" when
    it is still there after its wait; the drain then ends as usual."""
    from click.testing import CliRunner

    from claif_codd import cli, cli_control

    daemon = start_daemon("--drain-timeout", "3")
    assert daemon.proc is not None
    client = await Client.connect(daemon.socket)
    try:
        reply = await streaming(client, "[[slow:1000]] a b c d e f g", workdir)
        monkeypatch.setattr(cli_control, "STOP_WAIT_S", 0.0)  # the turn outlasts any wait
        result = await asyncio.to_thread(CliRunner().invoke, cli.main, ["stop", "--socket", str(daemon.socket)])
        assert result.exit_code == 1, result.output
        assert "still draining its turns" in result.output and "stopped" not in result.output
        assert_overloaded(await asyncio.wait_for(reply, WAIT_S), says="shutting down")  # cut at the drain deadline
        assert await asyncio.to_thread(daemon.proc.wait, WAIT_S) == 0
    finally:
        await client.close()


async def test_a_draining_daemon_is_not_taken_for_gone(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    """Its socket refuses connections as soon as the drain begins: ``start`` took it for stale, said
    "running", and the new daemon died on the registries the old one still held; ``status`` and a
    second ``stop`` said "not running"."""
    from click.testing import CliRunner

    from claif_codd import cli

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli.main, [*args, "--socket", str(daemon.socket)])

    daemon = start_daemon("--drain-timeout", "60")
    assert daemon.proc is not None
    client = await Client.connect(daemon.socket)
    try:
        reply = await streaming(client, "[[stall-mid]] a b", workdir)
        daemon.proc.send_signal(signal.SIGTERM)
        await async_wait_until(lambda: "daemon.draining" in log_text(daemon), 5, "the drain to start")
        started = await asyncio.to_thread(run, "start")
        assert started.exit_code == 1 and f"(pid {daemon.proc.pid}, socket {daemon.socket})" in started.output
        assert "still stopping" in started.output
        status = await asyncio.to_thread(run, "status")
        assert status.exit_code == 1 and "is stopping" in status.output
        stopping = asyncio.create_task(asyncio.to_thread(run, "stop"))
        await client.close()  # its turn ends with its connection: the drain is over
        stopped = await asyncio.wait_for(stopping, WAIT_S)
        assert stopped.exit_code == 0 and "already stopping; waiting for it" in stopped.output, stopped.output
        assert daemon.proc.poll() is not None
        with pytest.raises(ConnectionResetError):
            await reply  # the turn did not end otherwise
        assert (await asyncio.to_thread(run, "start")).exit_code == 0  # the state is free again
        assert (await asyncio.to_thread(run, "stop")).exit_code == 0
    finally:
        await client.close()


async def test_ctrl_c_while_stop_waits_leaves_with_130_and_the_drain_goes_on(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    """It was click's "Aborted!" and exit status 1, the code the docs give a failure."""
    daemon = start_daemon("--drain-timeout", "60")
    assert daemon.proc is not None
    client = await Client.connect(daemon.socket)
    try:
        reply = await streaming(client, "[[stall-mid]] a b", workdir)
        stop = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "claif_codd", "stop", "--socket", str(daemon.socket)),
            env=daemon.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        await async_wait_until(lambda: "daemon.draining" in log_text(daemon), 5, "the drain to start")
        stop.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(stop.communicate(), WAIT_S)
        assert (stop.returncode, out, err) == (130, b"", b"\nclaif-codd: interrupted\n")
        assert daemon.proc.poll() is None  # still draining its turn
        await client.close()  # which ends with its connection
        assert await asyncio.to_thread(daemon.proc.wait, WAIT_S) == 0
        with pytest.raises(ConnectionResetError):
            await reply
    finally:
        await client.close()


# --- 5b. turns suspended on their caller's tools ---------------------------------------------------------------

WEATHER = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
]


def test_past_max_suspended_turns_the_oldest_is_given_up_and_its_results_still_answered(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    """Libraries that end on a tool call (instructor's tool modes, pydantic-ai's tool output) never send
    its result: every such call left a turn suspended for 600 s, its thread loaded, without a bound."""
    from claif_cod import CodexClient

    daemon = start_daemon("--max-suspended-turns", "1")
    asks = [[{"role": "user", "content": f'[[call:get_weather {{"city": "{city}"}}]]'}] for city in ("Rome", "Oslo")]
    with CodexClient(daemon="require") as client:
        replies = []
        for ask in asks:
            replies.append(client.chat.completions.create(model="o4-mini", messages=ask, tools=WEATHER))
            wait_until(
                lambda: daemon.status().turns_in_flight == 1, what="one suspended turn"
            )  # (then the first's end)
        assert "engine.tool_calls_evicted" in log_text(daemon)
        [call] = replies[0].choices[0].message.tool_calls or []
        answered = [
            *asks[0],
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ]
        reply = client.chat.completions.create(model="o4-mini", messages=answered, tools=WEATHER)
        assert reply.choices[0].message.content == "Tool get_weather returned: sunny"  # a transcript now
        assert daemon.status().turns_in_flight == 1  # the second still waits for its result


# --- 6. idle exit ---------------------------------------------------------------------------------------------


async def test_idle_timeout_waits_for_clients_and_turns(
    start_daemon: Callable[..., DaemonProcess], workdir: Path
) -> None:
    daemon = start_daemon("--idle-timeout", "1")
    assert daemon.proc is not None
    client = await Client.connect(daemon.socket)
    try:
        await asyncio.sleep(1.6)  # connected but idle for longer than the timeout: stays up
        assert daemon.proc.poll() is None
        started = time.monotonic()
        assert await client.chat("[[slow:400]] a b c", workdir) == "Echo: a b c"  # a 1.6 s turn
        assert time.monotonic() - started > 1.5
        assert daemon.proc.poll() is None
    finally:
        await client.close()
    closed = time.monotonic()
    assert await asyncio.to_thread(daemon.proc.wait, WAIT_S) == 0
    assert 0.9 < time.monotonic() - closed < 10
    assert not daemon.socket.exists()
    assert "daemon.idle_exit" in log_text(daemon)


def usage_error(daemon_env: dict[str, str], command: str, *args: str) -> str:
    """``claif-codd COMMAND ARGS...``'s stderr, once it exited 2 (a usage error) without making its socket."""
    out = subprocess.run(
        [sys.executable, "-m", "claif_codd", command, *args, "--socket", daemon_env["CLAIF_COD_SOCKET"]],
        capture_output=True,
        text=True,
        env=daemon_env,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert not Path(daemon_env["CLAIF_COD_SOCKET"]).exists()
    return out.stderr


@pytest.mark.parametrize(
    "args",
    [["--idle-timeout", "0"], ["--idle-timeout", "-1"], ["--idle-timeout", "nan"], ["--log-level", "bogus"]],
)
@pytest.mark.parametrize("command", ["serve", "start"])
def test_a_meaningless_idle_timeout_or_log_level_is_a_usage_error(
    command: str, args: list[str], daemon_env: dict[str, str]
) -> None:
    """0 used to turn the idle exit off, a negative one spun the idle watch, nan meant never, and an
    unknown log level was a traceback."""
    if command == "start" and args[0] == "--log-level":
        pytest.skip("start runs serve with its own log options")
    assert f"Invalid value for '{args[0]}'" in usage_error(daemon_env, command, *args)


@pytest.mark.parametrize("option", ["--drain-timeout", "--thread-idle-timeout"])
def test_a_nan_drain_or_thread_idle_timeout_is_a_usage_error(option: str, daemon_env: dict[str, str]) -> None:
    """nan compares false with every time: a drain of nan ended at once ("the nan s drain deadline"),
    and a thread idle timeout of nan never unloaded a thread while its sweep woke 20 times a second."""
    assert f"Invalid value for '{option}': nan is not a number of seconds" in usage_error(
        daemon_env, "serve", option, "nan"
    )
