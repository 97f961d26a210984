"""claif-codd used the way an editor plugin uses it: named sessions, events, approvals, cancel, errors.

Every test talks to a real daemon process (``daemon`` fixture) over its socket with a small asyncio
client built from ``claif_cod.protocol`` alone (framing, codec, message structs); Codex is the real
binary and the model is the offline one, scripted by markers in the user text.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from chat_messages import patch_prompt
from daemon_process import DaemonProcess

from claif_cod.protocol import (
    PROTOCOL_VERSION,
    AgentMessageItem,
    ApprovalRequestedNotification,
    ApprovalRespondParams,
    ApprovalRespondRequest,
    CancelNotification,
    CancelParams,
    ChatCompletionsChunkNotification,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    ClosedResult,
    CodexOptions,
    CommandExecutionItem,
    DaemonStatus,
    DaemonStatusRequest,
    ErrorResponse,
    FileChange,
    FileChangeItem,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    HelloResult,
    IgnoredNotification,
    InterruptedResult,
    ItemCompleted,
    ItemStarted,
    Message,
    Notification,
    OkResult,
    Request,
    RequestId,
    Response,
    SessionCloseParams,
    SessionCloseRequest,
    SessionEvent,
    SessionEventNotification,
    SessionSendParams,
    SessionSendRequest,
    SessionsListRequest,
    SessionsListResult,
    SessionTurnResult,
    StreamDone,
    TextDelta,
    TurnInterruptParams,
    TurnInterruptRequest,
    TurnStarted,
    UsageEvent,
    decode,
    decode_result,
    encode,
    encode_frame,
)
from claif_cod.testing import ModelServer

pytestmark = [pytest.mark.codex, pytest.mark.timeout(60)]

T = TypeVar("T")
WAIT_S = 30.0
"""Upper bound for anything the daemon should answer; tests normally take a fraction of it."""


def hello_request(request_id: RequestId, name: str) -> HelloRequest:
    params = HelloParams(protocol_version=PROTOCOL_VERSION, package_version="test", client_name=name)
    return HelloRequest(id=request_id, params=params)


def same_dir(reported: str, expected: Path) -> bool:
    return Path(reported).resolve() == expected.resolve()


# --- a minimal editor-style client ------------------------------------------------------------------


class SocketClient:
    """One connection: every message the daemon sends is decoded and kept, in arrival order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.messages: list[Message] = []
        self.arrived_at: list[float] = []
        self.eof = False
        self.failure: BaseException | None = None
        """Why the read loop stopped, if not a clean EOF (an undecodable frame, a reset)."""
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, path: Path, *, hello: bool = True, name: str = "pytest-editor") -> SocketClient:
        reader, writer = await asyncio.open_unix_connection(str(path))
        client = cls(reader, writer)
        if hello:
            result = await client.call(hello_request(client.next_id(), name), HelloResult)
            assert result.protocol_version == PROTOCOL_VERSION
        return client

    async def _read_loop(self) -> None:
        try:
            while data := await self._reader.read(65536):
                for body in self._decoder.feed(data):
                    message = decode(body)  # the daemon must only ever send valid messages
                    async with self._changed:
                        self.messages.append(message)
                        self.arrived_at.append(time.monotonic())
                        self._changed.notify_all()
        except Exception as exc:
            self.failure = exc
        finally:
            async with self._changed:
                self.eof = True
                self._changed.notify_all()

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, message: Request | Notification) -> int:
        """Send ``message``; returns how many messages had arrived before it (for :meth:`reply`)."""
        mark = len(self.messages)
        self._writer.write(encode_frame(encode(message)))
        return mark

    def send_raw(self, data: bytes) -> int:
        mark = len(self.messages)
        self._writer.write(data)
        return mark

    async def wait_for(
        self, predicate: Callable[[Message], bool], *, after: int = 0, timeout: float = WAIT_S
    ) -> tuple[int, Message]:
        """The first message from index ``after`` on that matches, and its index."""

        def found() -> tuple[int, Message] | None:
            return next(((i, m) for i, m in enumerate(self.messages) if i >= after and predicate(m)), None)

        async def wait() -> tuple[int, Message]:
            async with self._changed:
                while (hit := found()) is None:
                    if self.eof:
                        raise ConnectionError(
                            f"connection ended ({self.failure!r}); received since: {self.messages[after:]}"
                        )
                    await self._changed.wait()
                return hit

        return await asyncio.wait_for(wait(), timeout)

    async def session_event(self, request_id: RequestId, kind: type[SessionEvent], *, after: int = 0) -> SessionEvent:
        """The first ``session.event`` of ``kind`` for ``request_id`` from index ``after`` on."""

        def matches(m: Message) -> bool:
            return (
                isinstance(m, SessionEventNotification)
                and m.params.request_id == request_id
                and isinstance(m.params.event, kind)
            )

        _, message = await self.wait_for(matches, after=after)
        assert isinstance(message, SessionEventNotification)
        return message.params.event

    async def reply(self, request_id: RequestId | None, *, after: int = 0, timeout: float = WAIT_S) -> Message:
        def is_reply(m: Message) -> bool:
            return isinstance(m, (Response, ErrorResponse)) and m.id == request_id

        return (await self.wait_for(is_reply, after=after, timeout=timeout))[1]

    async def request(self, request: Request, *, timeout: float = WAIT_S) -> Message:
        mark = self.send(request)
        return await self.reply(request.id, after=mark, timeout=timeout)

    async def call(self, request: Request, result_type: type[T], *, timeout: float = WAIT_S) -> T:
        reply = await self.request(request, timeout=timeout)
        assert isinstance(reply, Response), f"{request.__struct_config__.tag} failed: {reply}"
        return decode_result(reply.result, result_type)

    async def error(self, request_id: RequestId | None, *, after: int = 0) -> ErrorResponse:
        reply = await self.reply(request_id, after=after)
        assert isinstance(reply, ErrorResponse), reply
        return reply

    def events(self, request_id: RequestId) -> list[SessionEvent]:
        return [
            m.params.event
            for m in self.messages
            if isinstance(m, SessionEventNotification) and m.params.request_id == request_id
        ]

    def index_of_reply(self, request_id: RequestId) -> int:
        return next(
            i for i, m in enumerate(self.messages) if isinstance(m, (Response, ErrorResponse)) and m.id == request_id
        )

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    # --- request builders ---------------------------------------------------------------------------

    def session_send(
        self, session_id: str, text: str, workdir: Path, *, system: str | None = None, **options: Any
    ) -> SessionSendRequest:
        return SessionSendRequest(
            id=self.next_id(),
            params=SessionSendParams(
                session_id=session_id,
                text=text,
                options=CodexOptions(working_dir=str(workdir), **options),
                system=system,
            ),
        )

    def chat(
        self, text: str, workdir: Path, *, stream: bool = False, request_id: RequestId | None = None
    ) -> ChatCompletionsCreateRequest:
        body = {"model": "o4-mini", "messages": [{"role": "user", "content": text}], "stream": stream}
        return ChatCompletionsCreateRequest(
            id=self.next_id() if request_id is None else request_id,
            params=ChatCompletionsCreateParams(
                body=msgspec.Raw(json.dumps(body).encode()), options=CodexOptions(working_dir=str(workdir))
            ),
        )

    async def status(self) -> DaemonStatus:
        return await self.call(DaemonStatusRequest(id=self.next_id()), DaemonStatus)

    async def sessions(self) -> SessionsListResult:
        return await self.call(SessionsListRequest(id=self.next_id()), SessionsListResult)


Connect = Callable[..., Awaitable[SocketClient]]


@pytest.fixture
async def connect(daemon: DaemonProcess) -> AsyncIterator[Connect]:
    """Opens connections to the test's daemon; all of them are closed afterwards."""
    clients: list[SocketClient] = []

    async def open_connection(*, hello: bool = True, name: str = "pytest-editor") -> SocketClient:
        client = await SocketClient.connect(daemon.socket, hello=hello, name=name)
        clients.append(client)
        return client

    yield open_connection
    for client in clients:
        await client.close()


def turn_result(reply: Message) -> SessionTurnResult:
    assert isinstance(reply, Response), reply
    return decode_result(reply.result, SessionTurnResult)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# --- session.send -----------------------------------------------------------------------------------


async def test_session_send_streams_events_then_continues_the_thread(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    client = await connect()
    first = client.session_send("editor", "first question", workdir, system="Answer like a pirate.")
    result = turn_result(await client.request(first))

    assert result.status == "completed"
    assert result.session_id == "editor"
    assert result.text == "Echo: first question"
    notifications = [
        m for m in client.messages if isinstance(m, SessionEventNotification) and m.params.request_id == first.id
    ]
    assert all(n.params.session_id == "editor" for n in notifications)
    assert max(client.messages.index(n) for n in notifications) < client.index_of_reply(first.id)
    events = client.events(first.id)
    assert events[0] == TurnStarted(turn_id=result.turn_id)
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == result.text
    messages = [e.item for e in events if isinstance(e, ItemCompleted) and isinstance(e.item, AgentMessageItem)]
    assert [m.text for m in messages] == [result.text]
    assert any(isinstance(e, ItemStarted) and e.item.id == messages[0].id for e in events)
    usages = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usages, events
    assert result.usage is not None
    assert result.usage == usages[-1]
    assert result.usage.completion_tokens == len(result.text.split())
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens > 0

    [request] = codex_model_server.requests
    assert request.body["prompt_cache_key"] == result.thread_id
    assert "Answer like a pirate." in request.developer_texts()

    second = client.session_send("editor", "second question", workdir)
    again = turn_result(await client.request(second))
    assert again.status == "completed"
    assert again.thread_id == result.thread_id
    assert again.turn_id != result.turn_id
    assert again.text == "[turn 2] Echo: second question"
    assert "".join(e.delta for e in client.events(second.id) if isinstance(e, TextDelta)) == again.text
    _, follow_up = codex_model_server.requests
    assert follow_up.body["prompt_cache_key"] == result.thread_id
    assert follow_up.messages()[-3:] == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
    ]
    assert "Answer like a pirate." in follow_up.developer_texts()


async def test_a_command_shows_up_as_command_execution_items(connect: Connect, workdir: Path) -> None:
    client = await connect()
    send = client.session_send(
        "tools", "[[tool:echo hi]] run it", workdir, approval_policy="never", sandbox_mode="danger-full-access"
    )
    result = turn_result(await client.request(send))
    events = client.events(send.id)
    assert result.status == "completed", events
    assert not any(isinstance(m, ApprovalRequestedNotification) for m in client.messages)

    started = [e.item for e in events if isinstance(e, ItemStarted) and isinstance(e.item, CommandExecutionItem)]
    completed = [e.item for e in events if isinstance(e, ItemCompleted) and isinstance(e.item, CommandExecutionItem)]
    assert len(started) == 1 and len(completed) == 1, events
    command = completed[0]
    assert command.id == started[0].id
    assert "echo hi" in command.command
    assert command.exit_code == 0
    assert "hi" in (command.output or "")
    assert same_dir(command.cwd, workdir)
    assert result.text.startswith("Tool said:") and "hi" in result.text


async def test_a_file_change_shows_its_diff_in_the_question_and_the_items(connect: Connect, workdir: Path) -> None:
    (workdir / "a.py").write_text("x = 1\n")
    client = await connect()
    patch = patch_prompt("*** Update File: a.py", "*** Move to: b.py", "@@", "-x = 1", "+x = 2")
    send = client.session_send("patch", patch, workdir, approval_policy="untrusted")
    mark = client.send(send)
    _, message = await client.wait_for(lambda m: isinstance(m, ApprovalRequestedNotification), after=mark)
    assert isinstance(message, ApprovalRequestedNotification)
    approval = message.params
    expected = FileChange(
        path=str(workdir / "a.py"), kind="update", diff=approval.changes[0].diff, move_path=str(workdir / "b.py")
    )
    assert (approval.kind, approval.changes) == ("file_change", [expected])
    assert "-x = 1\n+x = 2" in expected.diff
    respond = ApprovalRespondParams(approval_id=approval.approval_id, decision="accept")
    assert await client.call(ApprovalRespondRequest(id=client.next_id(), params=respond), OkResult) == OkResult(ok=True)
    result = turn_result(await client.reply(send.id, after=mark))
    assert result.status == "completed"
    items = [
        e.item for e in client.events(send.id) if isinstance(e, ItemCompleted) and isinstance(e.item, FileChangeItem)
    ]
    assert [(item.id, item.status, item.changes) for item in items] == [(approval.item_id, "completed", [expected])]
    assert (workdir / "b.py").read_text() == "x = 2\n"


async def test_a_new_sessions_messages_run_in_the_order_they_were_sent(connect: Connect, workdir: Path) -> None:
    """The daemon's first requests: finding Codex and starting its process and the session's thread
    take each request its own time, and none may start its turn before a message sent before it."""
    client = await connect()
    sends = [client.session_send("in-order", f"message {i}", workdir) for i in range(4)]
    mark = client.send(sends[0])
    for send in sends[1:]:
        client.send(send)
    results = [turn_result(await client.reply(send.id, after=mark)) for send in sends]
    assert [r.text for r in results] == ["Echo: message 0"] + [f"[turn {i + 1}] Echo: message {i}" for i in range(1, 4)]
    started = [
        m.params.request_id
        for m in client.messages[mark:]
        if isinstance(m, SessionEventNotification) and isinstance(m.params.event, TurnStarted)
    ]
    assert started == [send.id for send in sends]


async def test_sessions_list_and_close(connect: Connect, workdir: Path, codex_model_server: ModelServer) -> None:
    client = await connect()
    assert (await client.sessions()).sessions == []
    before = time.time()
    first = turn_result(await client.request(client.session_send("listed", "one", workdir)))

    [info] = (await client.sessions()).sessions
    assert info.session_id == "listed"
    assert info.thread_id == first.thread_id
    assert info.turns == 1
    assert same_dir(info.working_dir, workdir)
    assert info.busy is False
    assert before - 1 <= info.last_used <= time.time() + 1
    assert (await client.status()).sessions == 1

    elsewhere = workdir.parent / "elsewhere"
    elsewhere.mkdir()
    second = turn_result(await client.request(client.session_send("listed", "two", elsewhere)))
    assert second.thread_id == first.thread_id  # the session moved, its thread kept
    [info] = (await client.sessions()).sessions
    assert (info.turns, same_dir(info.working_dir, elsewhere)) == (2, True)  # the last turn's directory

    close = SessionCloseParams(session_id="listed")
    assert await client.call(SessionCloseRequest(id=client.next_id(), params=close), ClosedResult) == ClosedResult(
        closed=True
    )
    assert (await client.sessions()).sessions == []
    assert await client.call(SessionCloseRequest(id=client.next_id(), params=close), ClosedResult) == ClosedResult(
        closed=False
    )

    fresh = turn_result(await client.request(client.session_send("listed", "two", workdir)))
    assert fresh.status == "completed"
    assert fresh.thread_id != first.thread_id
    assert fresh.text == "Echo: two"  # a new thread: the model saw only this turn
    assert codex_model_server.requests[-1].user_texts() == ["two"]
    [info] = (await client.sessions()).sessions
    assert (info.thread_id, info.turns) == (fresh.thread_id, 1)


async def test_turn_interrupt_by_session_id(connect: Connect, workdir: Path) -> None:
    client = await connect()
    words = " ".join(f"w{i}" for i in range(12))
    send = client.session_send("interrupt-me", f"[[slow:300]] {words}", workdir)
    mark = client.send(send)
    await client.session_event(send.id, TextDelta, after=mark)
    [info] = (await client.sessions()).sessions
    assert info.busy is True

    started = time.monotonic()
    interrupt = TurnInterruptRequest(id=client.next_id(), params=TurnInterruptParams(session_id="interrupt-me"))
    assert await client.call(interrupt, InterruptedResult) == InterruptedResult(interrupted=True)
    result = turn_result(await client.reply(send.id, after=mark))
    elapsed = time.monotonic() - started
    full = f"Echo: {words}"
    assert result.status == "interrupted"
    assert elapsed < 2.5, f"the interrupted turn took {elapsed:.1f} s to end"
    assert full.startswith(result.text) and len(result.text) < len(full), result.text

    [info] = (await client.sessions()).sessions
    assert info.busy is False
    nothing_running = TurnInterruptRequest(id=client.next_id(), params=TurnInterruptParams(session_id="interrupt-me"))
    assert await client.call(nothing_running, InterruptedResult) == InterruptedResult(interrupted=False)
    after = turn_result(await client.request(client.session_send("interrupt-me", "after", workdir)))
    assert after.status == "completed"
    assert after.thread_id == result.thread_id
    assert after.text.endswith("Echo: after")


@pytest.mark.parametrize("name", ["", "   ", "two\nlines", "x" * 257])
async def test_a_session_name_no_listing_could_show_is_refused(connect: Connect, workdir: Path, name: str) -> None:
    """``""`` made a session named ``""``, a newline broke ``sessions``' lines, and any length was kept."""
    client = await connect()
    error = await client.request(client.session_send(name, "hi", workdir))
    assert isinstance(error, ErrorResponse), error
    data = error.error.data
    assert error.error.code == -32000 and data is not None and data.body is not None
    assert (data.status_code, data.body.error.param) == (400, "session_id")
    assert (await client.sessions()).sessions == []


@pytest.mark.parametrize("params", [TurnInterruptParams(), TurnInterruptParams(request_id=1, session_id="s")])
async def test_turn_interrupt_names_one_turn(connect: Connect, params: TurnInterruptParams) -> None:
    """Neither name answered ``interrupted: false``, as if the turn had ended; both picked one silently."""
    client = await connect()
    error = await client.request(TurnInterruptRequest(id=client.next_id(), params=params))
    assert isinstance(error, ErrorResponse) and error.error.code == -32602, error


async def test_a_session_turn_answered_as_failed_leaves_no_trace(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    """It was answered as failed and yet recorded, in the registry and in Codex's thread alike."""
    client = await connect()
    assert turn_result(await client.request(client.session_send("clean", "one", workdir))).status == "completed"
    failed = await client.request(client.session_send("clean", "[[status:500]] two", workdir))
    assert isinstance(failed, ErrorResponse), failed
    after = turn_result(await client.request(client.session_send("clean", "three", workdir)))
    assert after.text == "[turn 2] Echo: three"
    assert codex_model_server.requests[-1].user_texts() == ["one", "three"]
    [info] = (await client.sessions()).sessions
    assert info.turns == 2


# --- cancellation -----------------------------------------------------------------------------------


async def test_cancel_of_a_streaming_chat(connect: Connect, workdir: Path, codex_model_server: ModelServer) -> None:
    client = await connect()
    chat = client.chat("[[stall-mid]] a b c d", workdir, stream=True)
    mark = client.send(chat)
    try:
        await client.wait_for(
            lambda m: isinstance(m, ChatCompletionsChunkNotification) and m.params.request_id == chat.id, after=mark
        )
    except asyncio.TimeoutError:
        pytest.fail(
            f"no chunk within {WAIT_S:g} s; the model got {len(codex_model_server.requests)} request(s); "
            f"received: {client.messages[mark:]}; status: {await client.status()}"
        )
    client.send(CancelNotification(params=CancelParams(id=chat.id)))
    error = await client.error(chat.id, after=mark)
    assert error.error.code == -32800

    async def idle() -> bool:
        return (await client.status()).turns_in_flight == 0

    assert await until(idle, timeout=5.0), await client.status()
    after = client.chat("next", workdir, stream=True)
    mark = client.send(after)
    reply = await client.reply(after.id, after=mark)
    assert isinstance(reply, Response), reply
    chunks = [
        json.loads(bytes(m.params.chunk))
        for m in client.messages[mark:]
        if isinstance(m, ChatCompletionsChunkNotification) and m.params.request_id == after.id
    ]
    assert decode_result(reply.result, StreamDone) == StreamDone(chunks=len(chunks))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Echo: next"


async def test_a_failed_chat_turn_does_not_stay_in_flight(connect: Connect, workdir: Path) -> None:
    """An HTTP error from the model ends the turn: nothing is left running once the error is answered."""
    client = await connect()
    failing = client.chat("[[status:500]] boom", workdir)
    error = await client.request(failing)
    assert isinstance(error, ErrorResponse), error
    assert error.error.code == -32000
    assert error.error.data is not None and error.error.data.status_code == 500

    async def idle() -> bool:
        return (await client.status()).turns_in_flight == 0

    started = time.monotonic()
    assert await until(idle, timeout=10.0), await client.status()
    waited = time.monotonic() - started
    assert waited < 1.0, f"the failed turn stayed in flight {waited:.1f} s after its error was answered"


# --- approvals --------------------------------------------------------------------------------------


async def test_approval_goes_to_the_requesting_connection_only(connect: Connect, workdir: Path) -> None:
    owner = await connect(name="owner")
    bystander = await connect(name="bystander")
    seen_by_bystander = len(bystander.messages)

    send = owner.session_send("approve", "[[tool:touch x.txt]] go", workdir, approval_policy="untrusted")
    mark = owner.send(send)
    _, message = await owner.wait_for(lambda m: isinstance(m, ApprovalRequestedNotification), after=mark)
    assert isinstance(message, ApprovalRequestedNotification)
    approval = message.params
    assert approval.request_id == send.id
    assert approval.kind == "command"
    assert "touch x.txt" in (approval.command or "")
    assert "decline" in approval.available_decisions
    assert approval.deadline_s > 0

    # A round trip on the bystander's connection: anything the daemon sent it about the approval (which
    # the owner has already received) would arrive before this reply, on the same connection.
    await bystander.status()
    assert [type(m) for m in bystander.messages[seen_by_bystander:]] == [Response]  # only its own reply

    respond = ApprovalRespondParams(approval_id=approval.approval_id, decision="decline")
    ok = await owner.call(ApprovalRespondRequest(id=owner.next_id(), params=respond), OkResult)
    assert ok == OkResult(ok=True)
    result = turn_result(await owner.reply(send.id, after=mark))
    assert result.status == "completed"
    assert approval.thread_id == result.thread_id and approval.turn_id == result.turn_id
    assert not (workdir / "x.txt").exists()
    # Answered already: a second answer is refused.
    late = await owner.call(ApprovalRespondRequest(id=owner.next_id(), params=respond), OkResult)
    assert late == OkResult(ok=False)
    await bystander.status()  # the same barrier, now that the turn has ended
    assert [type(m) for m in bystander.messages[seen_by_bystander:]] == [Response, Response]


async def test_a_connection_whose_cap_is_taken_still_answers_its_approvals(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    """With ``--max-inflight 1`` taken by a turn waiting for an approval, the connection's
    ``approval.respond`` (and ``daemon.status``) were refused as overloaded: the turn could only wait
    out the approval's deadline. Work beyond the cap is still refused."""
    daemon = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]), state_dir=tmp_path / "state", log=tmp_path / "codd.log",
        env=daemon_env,
    )  # fmt: skip
    daemon.start("--max-inflight", "1")
    owner = await SocketClient.connect(daemon.socket, name="owner")
    try:
        send = owner.session_send("capped", "[[tool:touch x.txt]] go", workdir, approval_policy="untrusted")
        mark = owner.send(send)
        _, message = await owner.wait_for(lambda m: isinstance(m, ApprovalRequestedNotification), after=mark)
        assert isinstance(message, ApprovalRequestedNotification)
        more = owner.session_send("other", "hi", workdir)
        assert (await owner.error(more.id, after=owner.send(more))).error.code == -32001  # OVERLOADED
        assert (await owner.status()).pid > 0
        respond = ApprovalRespondParams(approval_id=message.params.approval_id, decision="decline")
        answered = await owner.call(ApprovalRespondRequest(id=owner.next_id(), params=respond), OkResult)
        assert answered == OkResult(ok=True)
        assert turn_result(await owner.reply(send.id, after=mark)).status == "completed"
    finally:
        await owner.close()
        daemon.stop()


@pytest.mark.parametrize("stream", [False, True])
async def test_what_a_request_could_not_honour_is_said_to_a_socket_client(
    connect: Connect, workdir: Path, stream: bool
) -> None:
    """The HTTP endpoint says it in ``x-claif-cod-ignored-params``, and the Python client works it out
    itself: an editor on the socket had no way to learn it (parameters.md: never a silent drop)."""
    client = await connect(name="editor")
    body = {"model": "o4-mini", "stream": stream, "logit_bias": {"1": 2}, "temperature": 0.5}
    body["messages"] = [{"role": "user", "content": "hi"}]
    params = ChatCompletionsCreateParams(msgspec.Raw(json.dumps(body).encode()), CodexOptions(working_dir=str(workdir)))
    request = ChatCompletionsCreateRequest(id=client.next_id(), params=params)
    mark = client.send(request)
    assert isinstance(await client.reply(request.id, after=mark), Response)
    said, ignored = await client.wait_for(lambda m: isinstance(m, IgnoredNotification), after=mark)
    assert isinstance(ignored, IgnoredNotification)
    assert (ignored.params.request_id, ignored.params.params) == (request.id, ["logit_bias", "temperature"])
    assert said < client.index_of_reply(request.id)  # before its reply
    chunks = [i for i, m in enumerate(client.messages) if i > mark and isinstance(m, ChatCompletionsChunkNotification)]
    assert bool(chunks) == stream and all(said < i for i in chunks)  # and before its first chunk
    plain = ChatCompletionsCreateRequest(
        id=client.next_id(),
        params=ChatCompletionsCreateParams(
            msgspec.Raw(b'{"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}]}'),
            CodexOptions(working_dir=str(workdir)),
        ),
    )
    mark = client.send(plain)
    await client.reply(plain.id, after=mark)
    assert not any(isinstance(m, IgnoredNotification) for m in client.messages[mark:])  # nothing to say


# --- protocol errors --------------------------------------------------------------------------------


def raw_frame(message: dict[str, Any]) -> bytes:
    return encode_frame(json.dumps(message).encode())


async def test_protocol_errors_leave_other_connections_working(connect: Connect, workdir: Path) -> None:
    steady = await connect(name="steady")
    first = turn_result(await steady.request(steady.session_send("steady", "before", workdir)))
    # A turn stays in flight on the steady connection while another one misbehaves.
    running = steady.session_send("steady", "[[slow:100]] during a b c d e", workdir)
    running_mark = steady.send(running)

    # Request before hello: refused, but the connection stays usable.
    rude = await connect(hello=False)
    error = await rude.error(1, after=rude.send(DaemonStatusRequest(id=1)))
    assert error.error.code == -32002
    unknown_first = rude.send_raw(raw_frame({"jsonrpc": "2.0", "id": "u-0", "method": "no.such.method", "params": {}}))
    assert (await rude.error("u-0", after=unknown_first)).error.code == -32002  # anything but hello, first
    hello = hello_request(2, "r")
    assert (await rude.call(hello, HelloResult)).protocol_version == PROTOCOL_VERSION
    assert (await rude.status()).pid == (await steady.status()).pid

    # Unknown method: the reply carries the request's id.
    unknown = rude.send_raw(raw_frame({"jsonrpc": "2.0", "id": "u-1", "method": "no.such.method", "params": {}}))
    assert (await rude.error("u-1", after=unknown)).error.code == -32601

    # Duplicate id while the first request with that id is still in flight.
    stalled = rude.chat("[[stall]] wait", workdir, request_id=500)
    stalled_mark = rude.send(stalled)
    # No wait needed: one connection's frames are handled in order, and a request's id is in flight from
    # the moment it is read; the stalled turn never ends by itself (checked below: no reply of its own).
    duplicate = await rude.error(500, after=rude.send(DaemonStatusRequest(id=500)))
    assert duplicate.error.code == -32008
    rude.send(CancelNotification(params=CancelParams(id=500)))
    replies_500 = [m for m in rude.messages[stalled_mark:] if isinstance(m, (Response, ErrorResponse)) and m.id == 500]
    assert replies_500 == [duplicate]  # the stalled request itself was still running
    cancelled = await rude.wait_for(
        lambda m: isinstance(m, ErrorResponse) and m.id == 500 and m.error.code == -32800, after=stalled_mark
    )
    assert cancelled

    # Malformed JSON: PARSE_ERROR carrying the top-level id it could still read, and the connection still works.
    malformed = rude.send_raw(encode_frame(b'{"jsonrpc": "2.0", "id": 7, "method": '))
    parse_error = await rude.error(7, after=malformed)
    assert parse_error.error.code == -32700
    no_id = rude.send_raw(encode_frame(b'{"jsonrpc": "2.0", "method": '))
    assert (await rude.error(None, after=no_id)).error.code == -32700
    assert (await rude.status()).pid > 0

    # A header announcing 17 MiB: FRAME_TOO_LARGE, then the daemon hangs up.
    oversized = rude.send_raw((17 * 1024 * 1024).to_bytes(4, "big") + b'{"jsonrpc"')
    too_large = await rude.error(None, after=oversized)
    assert too_large.error.code == -32004

    async def hung_up() -> bool:
        return rude.eof

    assert await until(hung_up, timeout=5.0)

    # The steady connection's turn was untouched, and its session goes on.
    during = turn_result(await steady.reply(running.id, after=running_mark))
    assert during.status == "completed"
    assert during.text == "[turn 2] Echo: during a b c d e"
    after = turn_result(await steady.request(steady.session_send("steady", "after", workdir)))
    assert (after.status, after.thread_id, after.text) == ("completed", first.thread_id, "[turn 3] Echo: after")

    async def one_connection_left() -> bool:
        return (await steady.status()).connections == 1

    assert await until(one_connection_left)


async def test_a_request_pipelined_right_after_hello_is_served(connect: Connect) -> None:
    """hello came first, so a request written in the same packet must not get HELLO_REQUIRED."""
    client = await connect(hello=False)
    hello = hello_request(1, "p")
    mark = client.send_raw(encode_frame(encode(hello)) + encode_frame(encode(DaemonStatusRequest(id=2))))
    assert isinstance(await client.reply(1, after=mark), Response)
    status = await client.reply(2, after=mark)
    assert isinstance(status, Response), status
    assert decode_result(status.result, DaemonStatus).connections >= 1


async def test_a_connection_that_says_nothing_gets_hello_timeout_then_is_closed(connect: Connect) -> None:
    """No ``hello`` within 5 s: HELLO_TIMEOUT, with ``id`` null (nothing was asked), then the daemon hangs
    up, so that a peer that only connects cannot hold a connection slot."""
    silent = await connect(hello=False)
    timed_out = await silent.error(None)
    assert (timed_out.error.code, timed_out.error.message) == (-32007, "no hello within 5 s")

    async def hung_up() -> bool:
        return silent.eof

    assert await until(hung_up, timeout=10.0)


async def test_frames_after_one_that_closes_the_connection_do_not_run(connect: Connect) -> None:
    """A request id too large to echo closes the connection: a request read with it in the same read
    neither runs nor gets an answer (it was not cancelled: it never began)."""
    client = await connect()
    huge = raw_frame({"jsonrpc": "2.0", "id": "x" * (16 * 2**20 - 1000), "method": "daemon.status"})
    mark = client.send_raw(huge + encode_frame(encode(DaemonStatusRequest(id=5))))
    refused = await client.error(None, after=mark)
    assert (refused.error.code, refused.error.message) == (
        -32600,
        "request id too large: no reply could echo it; closing",
    )

    async def hung_up() -> bool:
        return client.eof

    assert await until(hung_up, timeout=10.0)
    assert [m for m in client.messages[mark:] if getattr(m, "id", None) == 5] == []


# --- two connections, one session -------------------------------------------------------------------


async def test_two_connections_take_turns_on_one_session(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    a = await connect(name="a")
    b = await connect(name="b")
    first = a.session_send("shared", "[[slow:150]] first a b c d e f", workdir)
    a_mark = a.send(first)
    await a.wait_for(
        lambda m: isinstance(m, SessionEventNotification) and isinstance(m.params.event, TextDelta), after=a_mark
    )
    second = b.session_send("shared", "second", workdir)
    b_mark = b.send(second)
    await b.status()  # a round trip behind it on b's connection: the daemon has read and taken turn 2
    # Turn 1 is still streaming (else this check would prove nothing: fail instead): turn 2 waits.
    assert all(not (isinstance(m, Response) and m.id == first.id) for m in a.messages), "turn 1 ended too soon"
    assert len(codex_model_server.requests) == 1
    assert b.events(second.id) == []

    one = turn_result(await a.reply(first.id, after=a_mark))
    two = turn_result(await b.reply(second.id, after=b_mark))
    assert (one.status, two.status) == ("completed", "completed")
    assert one.text == "Echo: first a b c d e f"
    assert two.text == "[turn 2] Echo: second"
    assert one.thread_id == two.thread_id
    b_started = b.arrived_at[
        next(
            i
            for i, m in enumerate(b.messages)
            if isinstance(m, SessionEventNotification) and isinstance(m.params.event, TurnStarted)
        )
    ]
    assert a.arrived_at[a.index_of_reply(first.id)] <= b_started
    _, follow_up = codex_model_server.requests
    assert follow_up.messages()[-3:] == [
        ("user", "[[slow:150]] first a b c d e f"),
        ("assistant", "Echo: first a b c d e f"),
        ("user", "second"),
    ]
    [info] = (await a.sessions()).sessions
    assert (info.turns, info.busy) == (2, False)
