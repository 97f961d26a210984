"""One simulated soak client: a raw socket connection speaking the claif-codd protocol through
``claif_cod.protocol`` alone, streaming turns of its conversation and checking every chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import claif_cod
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    ChatCompletionsChunkNotification,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    CodexOptions,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    Request,
    Response,
    StreamDone,
    decode,
    decode_result,
    encode,
    encode_frame,
)

MODEL = "o4-mini"
REQUEST_TIMEOUT_S = 120.0


class Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        self.items.append(text)


@dataclass
class Totals:
    requests_ok: int = 0
    requests_failed: int = 0
    chunks_expected: int = 0
    content_chunks: int = 0
    notifications: int = 0
    lost_chunks: int = 0
    first_chunk_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    per_request: list[tuple[int, int, float, float]] = field(default_factory=list)
    """(client, turn of its conversation, ms since the run started at the request, ms to complete)."""
    started: float = field(default_factory=time.perf_counter)


class Conn:
    """A protocol-only connection that handles one request at a time, as each simulated client does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.frames: list[bytes] = []
        self.ids = 0

    @classmethod
    async def open(cls, socket_path: Path, name: str) -> Conn:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        conn = cls(reader, writer)
        params = HelloParams(protocol_version=PROTOCOL_VERSION, package_version=claif_cod.__version__, client_name=name)
        conn.send(HelloRequest(id=conn.next_id(), params=params))
        reply = await conn.receive()
        if not isinstance(reply, Response):
            raise RuntimeError(f"hello refused: {reply}")
        return conn

    def next_id(self) -> int:
        self.ids += 1
        return self.ids

    def send(self, request: Request) -> None:
        self.writer.write(encode_frame(encode(request)))

    async def receive(self) -> Any:
        while not self.frames:
            data = await self.reader.read(256 * 1024)
            if not data:
                raise ConnectionResetError("claif-codd closed the connection")
            self.frames.extend(self.decoder.feed(data))
        return decode(self.frames.pop(0))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def reply_text(words: int) -> str:
    return " ".join(f"w{i}" for i in range(1, words + 1))


async def stream_once(
    conn: Conn, messages: list[dict[str, str]], workdir: str, words: int, totals: Totals, session: str | None = None
) -> str:
    """One streamed chat; returns the reply text, adding what was seen to ``totals``."""
    request_id = conn.next_id()
    body: dict[str, object] = {"model": MODEL, "stream": True, "messages": messages}
    if session is not None:
        body["session_id"] = session
    params = ChatCompletionsCreateParams(
        body=msgspec.Raw(msgspec.json.encode(body)), options=CodexOptions(working_dir=workdir)
    )
    started = time.perf_counter()
    conn.send(ChatCompletionsCreateRequest(id=request_id, params=params))
    notifications = content = 0
    text: list[str] = []
    first: float | None = None
    while True:
        message = await conn.receive()
        if isinstance(message, ChatCompletionsChunkNotification) and message.params.request_id == request_id:
            notifications += 1
            chunk = msgspec.json.decode(message.params.chunk)
            delta = chunk["choices"][0]["delta"].get("content") if chunk.get("choices") else None
            if delta:
                content += 1
                text.append(delta)
                if first is None:
                    first = time.perf_counter()
        elif isinstance(message, ErrorResponse) and message.id == request_id:
            raise RuntimeError(f"error {message.error.code}: {message.error.message}")
        elif isinstance(message, Response) and message.id == request_id:
            done = decode_result(message.result, StreamDone)
            break
    finished = time.perf_counter()
    totals.notifications += notifications
    totals.content_chunks += content
    totals.chunks_expected += words
    totals.lost_chunks += max(0, words - content) + max(0, done.chunks - notifications)
    totals.complete_ms.append((finished - started) * 1000)
    if first is not None:
        totals.first_chunk_ms.append((first - started) * 1000)
    reply = "".join(text)
    if content != words or done.chunks != notifications or reply != reply_text(words):
        raise RuntimeError(
            f"stream mismatch: {content}/{words} content chunks, done.chunks {done.chunks} vs {notifications} received"
        )
    return reply


@dataclass
class Conversation:
    """One simulated client's chat history; it carries over from round to round.

    With ``session`` the client continues a named session instead: each request carries only its
    new message, so request bodies stay the same size however long the conversation gets."""

    index: int
    workdir: str
    messages: list[dict[str, str]] = field(default_factory=list)
    turns: int = 0
    session: str | None = None


async def simulated_client(
    conversation: Conversation, socket_path: Path, requests: int, words: int, totals: Totals, errors: Errors
) -> None:
    """Connect, say hello, stream ``requests`` turns of the conversation one after another, disconnect."""
    index = conversation.index
    try:
        conn = await Conn.open(socket_path, f"soak-{index}")
    except Exception as exc:
        errors.add(f"client {index}: connect/hello: {type(exc).__name__}: {exc}")
        totals.requests_failed += requests
        return
    try:
        for left in range(requests, 0, -1):
            turn = conversation.turns
            asked = [
                *conversation.messages,
                {"role": "user", "content": f"client {index} turn {turn} [[long:{words}]]"},
            ]
            try:
                reply = await asyncio.wait_for(
                    stream_once(conn, asked, conversation.workdir, words, totals, conversation.session),
                    REQUEST_TIMEOUT_S,
                )
            except Exception as exc:
                errors.add(f"client {index} turn {turn}: {type(exc).__name__}: {exc}")
                totals.requests_failed += 1
                if isinstance(exc, (ConnectionError, asyncio.TimeoutError)):
                    totals.requests_failed += left - 1
                    return
                continue
            totals.requests_ok += 1
            complete = totals.complete_ms[-1]
            totals.per_request.append(
                (index, turn, round((time.perf_counter() - totals.started) * 1000 - complete), complete)
            )
            if conversation.session is None:
                conversation.messages = [*asked, {"role": "assistant", "content": reply}]
            conversation.turns += 1
    finally:
        await conn.close()
