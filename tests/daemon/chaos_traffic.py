"""Session traffic for the kill -9 chaos test: raw protocol clients that keep ``session.send`` going.

Each :class:`TrafficWorker` owns one connection (``claif_cod.protocol`` framing and codec over
``asyncio.open_unix_connection``), sends one turn at a time to a session picked by its own seeded
``random.Random``, and reconnects whenever the daemon goes away. Every attempt ends up in the shared
:class:`TrafficLog` as exactly one :class:`Attempt`: acknowledged (its ``SessionTurnResult`` reached
us), lost to a connection error while in flight (expected when the daemon is killed under it), or
something that should never happen (an error reply, a non-completed turn, no answer in time).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from claif_cod.protocol import (
    PROTOCOL_VERSION,
    CodexOptions,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    HelloResult,
    Request,
    Response,
    SessionSendParams,
    SessionSendRequest,
    SessionsListRequest,
    SessionsListResult,
    SessionTurnResult,
    decode,
    decode_result,
    encode,
    encode_frame,
)

T = TypeVar("T")

TURN_TIMEOUT_S = 30.0
"""A turn on the offline model takes well under a second; this only catches hangs."""

CONNECT_RETRY_S = 0.01

_REPLY = re.compile(r"^(?:\[turn (\d+)\] )?Echo: (.*)$", re.DOTALL)

Outcome = Literal["acked", "connection_lost", "error_reply", "not_completed", "timeout"]


class DaemonGone(ConnectionError):
    """The connection ended (EOF, reset, broken pipe) before the reply arrived."""


class ErrorReply(Exception):
    def __init__(self, reply: ErrorResponse) -> None:
        super().__init__(f"{reply.error.code}: {reply.error.message} {reply.error.data!r}")
        self.reply = reply


class ProtocolConnection:
    """One hello'd connection; one request at a time, notifications (``session.event``) skipped."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        self._pending: list[bytes] = []
        self._ids = itertools.count(1)
        self.daemon_pid = 0

    @classmethod
    async def open(cls, path: Path, name: str) -> ProtocolConnection:
        reader, writer = await asyncio.open_unix_connection(str(path))
        conn = cls(reader, writer)
        try:
            hello = await conn.call(
                HelloRequest(
                    id=conn.next_id(),
                    params=HelloParams(protocol_version=PROTOCOL_VERSION, package_version="chaos", client_name=name),
                ),
                HelloResult,
                timeout=TURN_TIMEOUT_S,
            )
        except BaseException:
            conn.close()
            raise
        conn.daemon_pid = hello.daemon_pid
        return conn

    def next_id(self) -> int:
        return next(self._ids)

    async def call(self, request: Request, result_type: type[T], *, timeout: float) -> T:
        return await asyncio.wait_for(self._call(request, result_type), timeout)

    async def _call(self, request: Request, result_type: type[T]) -> T:
        try:
            self._writer.write(encode_frame(encode(request)))
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise DaemonGone(f"send failed: {exc!r}") from exc
        while True:
            while self._pending:
                message = decode(self._pending.pop(0))
                if isinstance(message, Response) and message.id == request.id:
                    return decode_result(message.result, result_type)
                if isinstance(message, ErrorResponse) and message.id == request.id:
                    raise ErrorReply(message)
                # anything else is a session.event notification for this request: skip it
            try:
                data = await self._reader.read(65536)
            except (ConnectionError, OSError) as exc:
                raise DaemonGone(f"read failed: {exc!r}") from exc
            if not data:
                raise DaemonGone("daemon closed the connection")
            self._pending.extend(self._decoder.feed(data))

    def close(self) -> None:
        self._writer.transport.abort()


async def connect(path: Path, name: str, stop: asyncio.Event | None = None) -> ProtocolConnection:
    """Connect, retrying while the daemon is down (socket missing or refusing) or dies mid-hello."""
    while True:
        try:
            return await ProtocolConnection.open(path, name)
        except (ConnectionError, FileNotFoundError, OSError):
            if stop is not None and stop.is_set():
                raise
            await asyncio.sleep(CONNECT_RETRY_S)


async def list_sessions(path: Path) -> SessionsListResult:
    conn = await connect(path, "chaos-check")
    try:
        return await conn.call(SessionsListRequest(id=conn.next_id()), SessionsListResult, timeout=TURN_TIMEOUT_S)
    finally:
        conn.close()


@dataclass
class Attempt:
    """One ``session.send``: what was sent, and how it ended."""

    session_id: str
    text: str
    worker: int
    daemon_pid: int
    sent_at: float
    outcome: Outcome | None = None
    ended_at: float = 0.0
    thread_id: str | None = None
    reply: str | None = None
    detail: str = ""

    @property
    def user_messages_seen(self) -> int | None:
        """K from the model's ``[turn K] Echo: ...`` reply: the real user messages it saw (1 if unprefixed)."""
        match = _REPLY.match(self.reply or "")
        if match is None:
            return None
        return int(match.group(1)) if match.group(1) else 1


@dataclass
class TrafficLog:
    attempts: list[Attempt] = field(default_factory=list)
    reconnects: int = 0

    def acked(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome == "acked"]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for a in self.attempts if a.outcome == outcome)

    def in_flight(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome is None]

    def unexpected(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome not in ("acked", "connection_lost", None)]


async def send_turn(
    conn: ProtocolConnection, attempt: Attempt, working_dir: Path, *, timeout: float = TURN_TIMEOUT_S
) -> Attempt:
    """Run ``attempt`` on ``conn`` and fill in its outcome (never raises for daemon-side failures)."""
    request = SessionSendRequest(
        id=conn.next_id(),
        params=SessionSendParams(
            session_id=attempt.session_id,
            text=attempt.text,
            options=CodexOptions(working_dir=str(working_dir), model="o4-mini"),
        ),
    )
    try:
        result = await conn.call(request, SessionTurnResult, timeout=timeout)
    except DaemonGone as exc:
        attempt.outcome, attempt.detail = "connection_lost", str(exc)
    except ErrorReply as exc:
        attempt.outcome, attempt.detail = "error_reply", str(exc)
    except asyncio.TimeoutError:
        attempt.outcome, attempt.detail = "timeout", f"no reply within {timeout} s"
    else:
        attempt.thread_id, attempt.reply = result.thread_id, result.text
        if result.status == "completed" and result.session_id == attempt.session_id:
            attempt.outcome = "acked"
        else:
            attempt.outcome, attempt.detail = "not_completed", f"{result!r}"
    attempt.ended_at = time.monotonic()
    return attempt


class TrafficWorker:
    """Sends turns back to back until ``stop`` is set; reconnects after every lost connection."""

    def __init__(
        self,
        index: int,
        socket: Path,
        working_dir: Path,
        sessions: list[str],
        log: TrafficLog,
        rng: random.Random,
    ) -> None:
        self.index = index
        self.socket = socket
        self.working_dir = working_dir
        self.sessions = sessions
        self.log = log
        self.rng = rng
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        conn: ProtocolConnection | None = None
        try:
            while not stop.is_set():
                if conn is None:
                    try:
                        conn = await connect(self.socket, f"chaos-{self.index}", stop)
                    except (ConnectionError, FileNotFoundError, OSError):
                        return  # stopping
                    self.log.reconnects += 1
                self.sent += 1
                attempt = Attempt(
                    session_id=self.rng.choice(self.sessions),
                    text=f"chaos w{self.index} n{self.sent}",
                    worker=self.index,
                    daemon_pid=conn.daemon_pid,
                    sent_at=time.monotonic(),
                )
                self.log.attempts.append(attempt)
                await send_turn(conn, attempt, self.working_dir)
                if attempt.outcome == "connection_lost":
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()
