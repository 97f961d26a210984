"""``turn.interrupt`` named by ``request_id``, as a client written from docs/protocol.md uses it.

The turn stops and its request finishes normally (never REQUEST_CANCELLED): a ``session.send``
answers ``status: interrupted``, a chat (streamed or not, with or without a session) answers
with what the turn produced and says it was interrupted. Usage is what Codex counted for the
turn's model requests that finished: a turn interrupted while a command runs reports its
first request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from test_sessions_socket import Connect, SocketClient, turn_result
from test_sessions_socket import connect as connect  # the fixture, re-exported by its name

from claif_cod.protocol import (
    ChatCompletionsChunkNotification,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    CodexOptions,
    ErrorResponse,
    InterruptedResult,
    Message,
    Response,
    SessionEventNotification,
    StreamDone,
    TextDelta,
    TurnInterruptParams,
    TurnInterruptRequest,
    UsageEvent,
    decode_result,
)
from claif_cod.testing import ModelServer, RecordedRequest

pytestmark = [pytest.mark.codex, pytest.mark.timeout(90)]

WORDS = " ".join(f"w{i}" for i in range(12))
SLOW = f"[[slow:300]] {WORDS}"
FULL = f"Echo: {WORDS}"
TOOL_OPTIONS: dict[str, Any] = {"approval_policy": "never", "sandbox_mode": "danger-full-access"}


def chat(
    client: SocketClient, text: str, workdir: Path, *, stream: bool = False, include_usage: bool = False, **options: Any
) -> ChatCompletionsCreateRequest:
    body: dict[str, Any] = {"model": "o4-mini", "messages": [{"role": "user", "content": text}], "stream": stream}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return ChatCompletionsCreateRequest(
        id=client.next_id(),
        params=ChatCompletionsCreateParams(
            body=msgspec.Raw(json.dumps(body).encode()), options=CodexOptions(working_dir=str(workdir), **options)
        ),
    )


async def interrupt(client: SocketClient, request_id: int) -> bool:
    request = TurnInterruptRequest(id=client.next_id(), params=TurnInterruptParams(request_id=request_id))
    return (await client.call(request, InterruptedResult)).interrupted


def chunks_of(client: SocketClient, request_id: int) -> list[dict[str, Any]]:
    return [
        json.loads(bytes(m.params.chunk))
        for m in client.messages
        if isinstance(m, ChatCompletionsChunkNotification) and m.params.request_id == request_id
    ]


def input_words(request: RecordedRequest) -> int:
    """The offline model's ``input_tokens`` for a request of plain messages (docs/testing.md)."""
    texts = [
        part.get("text", "")
        for item in request.body["input"]
        for part in item.get("content") or []
        if isinstance(part, dict)
    ]
    return len("\n".join(texts).split())


async def first_model_request(server: ModelServer) -> RecordedRequest:
    """Returns once Codex has sent the turn's first model request."""
    deadline = time.monotonic() + 30
    while not server.requests:
        assert time.monotonic() < deadline, "Codex never asked the model"
        await asyncio.sleep(0.02)
    return server.requests[0]


async def file_appears(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():  # noqa: ASYNC240 (a stat per poll)
        assert time.monotonic() < deadline, f"{path} never appeared: the command did not run"
        await asyncio.sleep(0.02)


async def test_session_send_interrupted_by_its_request_finishes_normally(connect: Connect, workdir: Path) -> None:
    client = await connect()
    send = client.session_send("by-request", SLOW, workdir)
    mark = client.send(send)
    await client.session_event(send.id, TextDelta, after=mark)
    assert await interrupt(client, send.id) is True
    result = turn_result(await client.reply(send.id, after=mark))
    assert result.status == "interrupted"
    assert FULL.startswith(result.text) and 0 < len(result.text) < len(FULL), result.text

    after = turn_result(await client.request(client.session_send("by-request", "after", workdir)))
    assert (after.status, after.thread_id) == ("completed", result.thread_id)
    assert await interrupt(client, send.id) is False  # that request is over


async def test_streamed_chat_interrupted_by_its_request_finishes_normally(connect: Connect, workdir: Path) -> None:
    client = await connect()
    request = chat(client, SLOW, workdir, stream=True)
    mark = client.send(request)
    await client.wait_for(
        lambda m: isinstance(m, ChatCompletionsChunkNotification) and m.params.request_id == request.id, after=mark
    )
    assert await interrupt(client, request.id) is True
    reply = await client.reply(request.id, after=mark)
    assert isinstance(reply, Response), reply
    chunks = chunks_of(client, request.id)
    assert decode_result(reply.result, StreamDone) == StreamDone(chunks=len(chunks), interrupted=True)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert FULL.startswith(text) and 0 < len(text) < len(FULL), text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

    assert (await client.status()).turns_in_flight == 0
    done = await client.request(chat(client, "next", workdir, stream=True))
    assert isinstance(done, Response) and decode_result(done.result, StreamDone).interrupted is False


async def test_chat_without_a_session_interrupted_by_its_request_finishes_normally(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Such a chat can only be named by its request."""
    client = await connect()
    request = chat(client, SLOW, workdir)
    mark = client.send(request)
    await first_model_request(codex_model_server)
    assert await interrupt(client, request.id) is True
    reply = await client.reply(request.id, after=mark)
    assert isinstance(reply, Response), reply
    completion = json.loads(bytes(reply.result))
    assert completion["interrupted"] is True
    [choice] = completion["choices"]
    assert choice["finish_reason"] == "stop"
    assert FULL.startswith(choice["message"]["content"]) and len(choice["message"]["content"]) < len(FULL)

    complete = await client.request(chat(client, "next", workdir))
    assert isinstance(complete, Response) and "interrupted" not in json.loads(bytes(complete.result))


async def test_interrupted_chat_reports_the_usage_codex_counted(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Interrupted while its command runs: the model request that asked for the command was counted."""
    client = await connect()
    request = chat(client, "[[tool:touch started && sleep 30]] go", workdir, **TOOL_OPTIONS)
    mark = client.send(request)
    await file_appears(workdir / "started")
    assert await interrupt(client, request.id) is True
    reply = await client.reply(request.id, after=mark)
    assert isinstance(reply, Response), reply
    completion = json.loads(bytes(reply.result))
    assert completion["interrupted"] is True
    [asked] = codex_model_server.requests
    usage = completion["usage"]
    assert usage["prompt_tokens"] == input_words(asked) > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_interrupted_stream_reports_the_usage_codex_counted(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    client = await connect()
    request = chat(
        client, "[[tool:touch started && sleep 30]] go", workdir, stream=True, include_usage=True, **TOOL_OPTIONS
    )
    mark = client.send(request)
    await file_appears(workdir / "started")
    assert await interrupt(client, request.id) is True
    reply = await client.reply(request.id, after=mark)
    assert isinstance(reply, Response), reply
    assert decode_result(reply.result, StreamDone).interrupted is True
    usage = chunks_of(client, request.id)[-1]["usage"]
    [asked] = codex_model_server.requests
    assert usage["prompt_tokens"] == input_words(asked) > 0


async def test_interrupted_session_turn_reports_the_usage_codex_counted(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    client = await connect()
    # The command's answer is counted; the model's next answer never ends. (A running command will
    # not do: Codex may count the answer that asked for it only once the command yields, at 10 s.)
    send = client.session_send("counted", "[[tool:echo ran]] [[stall-mid]] go", workdir, **TOOL_OPTIONS)
    mark = client.send(send)

    def event(kind: type[object]) -> Callable[[Message], bool]:
        return lambda m: (
            isinstance(m, SessionEventNotification)
            and m.params.request_id == send.id
            and isinstance(m.params.event, kind)
        )

    at, counted = await client.wait_for(event(UsageEvent), after=mark)
    await client.wait_for(event(TextDelta), after=at)  # the second answer is streaming, and stalls
    assert await interrupt(client, send.id) is True
    result = turn_result(await client.reply(send.id, after=mark))
    assert result.status == "interrupted"
    assert isinstance(counted, SessionEventNotification) and isinstance(counted.params.event, UsageEvent)
    assert counted.params.event.usage.prompt_tokens == input_words(codex_model_server.requests[0]) > 0
    # Codex 0.163 also counts the answer it cut short. Either way the result is the last count the
    # session reported, each count covering one model request more.
    counts = [
        m.params.event.usage
        for m in client.messages[mark:]
        if isinstance(m, SessionEventNotification)
        and m.params.request_id == send.id
        and isinstance(m.params.event, UsageEvent)
    ]
    assert result.usage is not None and result.usage == counts[-1]
    assert result.usage.prompt_tokens == sum(input_words(r) for r in codex_model_server.requests[: len(counts)])


async def test_session_turn_interrupted_mid_answer_counts_no_usage(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Codex repeats the thread's count as it ends a turn interrupted mid-answer: that repeat is the
    session's previous turn's request, not one of this turn (whose only answer was cut short)."""
    client = await connect()
    first = turn_result(await client.request(client.session_send("recount", "first", workdir)))
    assert first.usage is not None and first.usage.total_tokens > 0
    send = client.session_send("recount", SLOW, workdir)
    mark = client.send(send)
    await client.session_event(send.id, TextDelta, after=mark)
    assert await interrupt(client, send.id) is True
    result = turn_result(await client.reply(send.id, after=mark))
    assert result.status == "interrupted"
    assert result.usage is not None and (result.usage.prompt_tokens, result.usage.total_tokens) == (0, 0)
    assert not [
        m
        for m in client.messages[mark:]
        if isinstance(m, SessionEventNotification)
        and m.params.request_id == send.id
        and isinstance(m.params.event, UsageEvent)
    ]


async def test_requests_interrupted_while_they_wait_for_their_session_start_no_turn(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    """A turn started only to be interrupted may well complete first: a request interrupted while it
    waits for its busy session starts none.  It answers interrupted, with no text (a session turn
    with no turn id), and its message never reaches the session."""
    client = await connect()
    running = client.session_send("queue", SLOW, workdir)
    mark = client.send(running)
    queued = [client.session_send("queue", f"queued {i}", workdir) for i in range(3)]
    chats = [chat(client, f"queued chat {i}", workdir, session_id="queue", stream=i == 1) for i in range(2)]
    for request in [*queued, *chats]:
        client.send(request)
    await client.session_event(running.id, TextDelta, after=mark)
    for request in [*queued, *chats]:
        assert await interrupt(client, request.id) is True
    assert turn_result(await client.reply(running.id, after=mark)).status == "completed"
    results = [turn_result(await client.reply(request.id, after=mark)) for request in queued]
    assert [(r.status, r.text, r.turn_id) for r in results] == [("interrupted", "", "")] * len(queued)
    assert not [
        m for m in client.messages if isinstance(m, SessionEventNotification) and m.params.request_id != running.id
    ]
    plain = await client.reply(chats[0].id, after=mark)
    assert isinstance(plain, Response), plain
    completion = json.loads(bytes(plain.result))
    assert completion["interrupted"] is True
    assert [(c["finish_reason"], c["message"]["content"]) for c in completion["choices"]] == [("stop", "")]
    streamed = await client.reply(chats[1].id, after=mark)
    assert isinstance(streamed, Response), streamed
    assert decode_result(streamed.result, StreamDone).interrupted is True
    assert [c["choices"][0]["delta"].get("content") for c in chunks_of(client, chats[1].id)] == ["", None]

    after = turn_result(await client.request(client.session_send("queue", "after", workdir)))
    assert after.status == "completed"
    assert codex_model_server.requests[-1].user_texts() == [SLOW, "after"]  # what the session's thread holds


async def test_interrupt_of_a_request_that_runs_no_turn_is_false(connect: Connect) -> None:
    client = await connect()
    assert await interrupt(client, 999) is False
    reply = await client.request(
        TurnInterruptRequest(id=client.next_id(), params=TurnInterruptParams(request_id="no-such"))
    )
    assert isinstance(reply, Response) and not isinstance(reply, ErrorResponse)
