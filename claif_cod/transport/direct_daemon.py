"""A sync caller's ``create()`` sent to claif-codd from its own thread, on a connection of its own.

Through the engine loop a daemon turn crosses threads twice on the client's side (the caller
hands the request to the loop, the loop hands the reply, or each chunk, back) and the loop
frames and decodes in between: ~0.5 ms of a warm turn and more of a stream's first chunk
(bench/README.md, "Where a daemon turn's time goes").  A sync ``create()`` that would only build
openai's object from the reply instead writes the request to a blocking connection and reads its
reply (or its stream's events, as the caller iterates) in its own thread.

It takes a request only once the engine loop's backend is connected to a daemon.  An approval the
daemon asks for is declined, as the loop's connection declines it, unless the client has a handler:
that is run to its decision on the engine loop (it is a coroutine), the caller's thread waiting for
it as it waits for the turn.  Whatever it does not take (a
raw response, every connection busy, one that cannot connect) goes through the engine loop as
before (an async client's request: see :mod:`claif_cod.transport.loop_daemon`); a request that
failed is handed to openai's pipeline there, so that its exceptions and retries are openai's own.
Interrupted (Ctrl-C) or closed early, the daemon is told to stop the request, as the loop's
connection tells it.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import msgspec

from claif_cod._log import get_logger
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.openai_compat.request import stream_and_ignored
from claif_cod.openai_compat.responses_request import responses_ignored
from claif_cod.protocol import (
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    ResponsesCreateParams,
    ResponsesCreateRequest,
)
from claif_cod.transport.backend import SSE_DONE, SSE_HEADERS, ignored_headers, sse, sse_event
from claif_cod.transport.blocking_connection import BlockingConnection, ConnectionForked, ConnectionLost, DaemonSilent
from claif_cod.transport.daemon_backend import codex_options
from claif_cod.transport.daemon_client import ANSWER_GRACE_S, REOPEN_AFTER_S, connection_lost, unanswered
from claif_cod.transport.daemon_unusable import DaemonUnavailable, refusal
from claif_cod.transport.early import CHAT_PATH, Early, OpenAIStream, StreamMaker
from claif_cod.transport.socket_reads import Approve, Done, read_next, why_lost
from claif_cod.transport.stream_events import midstream_error
from claif_cod.transport.stream_objects import STREAM_OBJECTS_DELAY_S

log = get_logger("claif_cod.direct_daemon")

MAX_CONNECTIONS = 16
"""Requests in flight from callers' threads at once; more go through the engine loop."""
CLOSE_WAIT_S = 30.0
"""How long closing an unfinished stream waits for the daemon to confirm its turn stopped."""


def _request(
    chat: bool, request_id: int, body: bytes, options: RequestOptions
) -> ChatCompletionsCreateRequest | ResponsesCreateRequest:
    codex = codex_options(options)
    if chat:
        return ChatCompletionsCreateRequest(
            id=request_id, params=ChatCompletionsCreateParams(body=msgspec.Raw(body), options=codex)
        )
    return ResponsesCreateRequest(id=request_id, params=ResponsesCreateParams(body=msgspec.Raw(body), options=codex))


class DirectDaemon:
    """Callers' connections to the daemon at ``path``; an idle one is kept for the next request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._idle: list[BlockingConnection] = []
        self._busy: set[BlockingConnection] = set()
        self._opening = 0
        self._reopen_at = 0.0
        """No connection is opened before this (``time.monotonic``) after one could not be."""
        self._lock = threading.RLock()  # a stream's finalizer may run while this thread holds it
        self._closed = False
        weakref.finalize(self, _close_all, self._idle, self._busy)

    def answer(
        self, early: Early, options: RequestOptions, stream: StreamMaker | None, approve: Approve | None
    ) -> bytes | OpenAIStream | APIFailure | None:
        """``early``'s reply as a JSON body, or openai's ``Stream`` of its events (then ``early.stream``
        is its response); its failure; or None when this path does not take it (nothing was sent).
        ``approve`` decides what the daemon asks to approve (None: declined).  ``early.verify`` runs
        once the request is sent; what it raises is raised once the daemon stopped the request."""
        conn = self._take()
        if conn is None:
            return None
        chat = early.path == CHAT_PATH
        request_id = conn.next_id()
        request = _request(chat, request_id, early.body, options)
        refused = refusal(self.path, conn.hello, request)
        if refused is not None:  # an older daemon (see daemon_unusable.refusal): nothing is sent
            self.release(conn)
            return refused
        try:
            conn.listen(None if options.timeout is None else options.timeout + ANSWER_GRACE_S)
            conn.send(request)
        except OSError:
            conn.broken = True
            self.release(conn)
            return None  # the daemon is gone: the engine loop finds out what to do
        except APIFailure as failure:  # larger than the daemon takes: refused before a byte was sent
            self.release(conn)
            return failure
        except BaseException:  # interrupted with the frame maybe half-written: the daemon drops it
            self.abandon(conn, request_id)
            raise
        if early.verify is not None:
            try:
                early.verify()
            except Exception:
                self.stop(conn, request_id)  # undone before the caller hears of it
                raise
            except BaseException:
                self.abandon(conn, request_id)
                raise
        if stream is None:
            return self._reply(conn, request_id, approve, options.timeout)
        return self._stream(conn, request_id, early, stream, chat, approve, options.timeout)

    def _reply(
        self, conn: BlockingConnection, request_id: int, approve: Approve | None, timeout: float | None
    ) -> bytes | APIFailure:
        try:
            while not isinstance(item := read_next(conn, request_id, approve), Done):
                pass  # a request that is not streamed has no items
        except APIFailure as failure:
            self.release(conn)
            return failure
        except DaemonSilent:
            assert timeout is not None  # (listened for that long)
            self.abandon(conn, request_id)
            return unanswered(timeout)
        except ConnectionLost as exc:
            self.release(conn)
            return connection_lost(why_lost(conn, exc))
        except BaseException:
            self.abandon(conn, request_id)
            raise
        self.release(conn)
        return bytes(item.result)

    def _stream(
        self,
        conn: BlockingConnection,
        request_id: int,
        early: Early,
        maker: StreamMaker,
        chat: bool,
        approve: Approve | None,
        timeout: float | None,
    ) -> OpenAIStream | APIFailure | None:
        """openai's ``Stream``, made while Codex works (unless its first event is in within
        ``STREAM_OBJECTS_DELAY_S``), returned once the first event is in."""
        with contextlib.suppress(OSError, ValueError):
            select.select([conn.sock], [], [], STREAM_OBJECTS_DELAY_S)
        events: SocketEvents | None = None
        try:
            request = maker.request()
            events = SocketEvents(self, conn, request_id, request, chat, approve, timeout)
            ignored = stream_and_ignored(early.body)[1] if chat else responses_ignored(early.body)
            headers = {**SSE_HEADERS, **ignored_headers(ignored)}
            response = httpx2.Response(200, headers=headers, stream=events, request=request)
            made = maker(response)
        except Exception:
            log.exception("direct_daemon.stream_objects_failed")
            if events is not None:
                events.abandon()
            else:
                self.abandon(conn, request_id)
            return None  # the engine loop takes the request again, from the start
        failure = events.first()
        if failure is not None:
            return failure
        early.stream = response
        return made

    def _take(self) -> BlockingConnection | None:
        with self._lock:
            if self._closed:
                return None
            while self._idle:
                conn = self._idle.pop()
                if conn.idle():
                    self._busy.add(conn)
                    return conn
                conn.close()
            if len(self._busy) + self._opening >= MAX_CONNECTIONS or time.monotonic() < self._reopen_at:
                return None
            self._opening += 1
        opened: BlockingConnection | None = None
        try:
            opened = BlockingConnection.open(self.path, "claif_cod")
        except DaemonUnavailable as exc:
            log.debug("direct_daemon.unavailable", reason=str(exc))
            self._reopen_at = time.monotonic() + REOPEN_AFTER_S
        finally:
            with self._lock:
                self._opening -= 1
                if opened is not None and self._closed:
                    opened.close()
                    opened = None
                if opened is not None:
                    self._busy.add(opened)
        return opened

    def release(self, conn: BlockingConnection) -> None:
        """``conn``'s request is over: it is kept for the next one, unless it is broken."""
        with self._lock:
            self._busy.discard(conn)
            if conn.broken or self._closed:
                conn.close()
            else:
                self._idle.append(conn)

    def abandon(self, conn: BlockingConnection, request_id: int) -> None:
        """Nobody waits for the request any more: the daemon stops it, and the connection is closed."""
        conn.cancel(request_id)
        conn.close()
        with self._lock:
            self._busy.discard(conn)

    def stop(self, conn: BlockingConnection, request_id: int) -> None:
        """The daemon stops the request, and the connection is kept once it confirmed (closed if that
        takes longer than ``CLOSE_WAIT_S``)."""
        conn.cancel(request_id)
        try:
            conn.listen(CLOSE_WAIT_S)
            while not isinstance(read_next(conn, request_id, None), Done):  # stopping: approvals declined
                pass
        except (APIFailure, ConnectionLost, OSError):
            pass  # "cancelled", as expected; or the connection is broken (or silent: given up)
        except BaseException:
            self.abandon(conn, request_id)
            raise
        self.release(conn)

    def close(self) -> None:
        """Idle connections are closed; a caller reading one in flight is woken (its request fails).
        Both gone through as copies: a dropped stream's finalizer, which the collector may run in this
        thread at any allocation (the lock is reentrant), takes its connection out of ``_busy``."""
        with self._lock:
            self._closed = True
            idle, busy = self._idle.copy(), self._busy.copy()
            self._idle.clear()
            for conn in idle:
                conn.close()
            for conn in busy:
                conn.wake()


def _close_all(idle: list[BlockingConnection], busy: set[BlockingConnection]) -> None:
    for conn in [*idle, *busy]:
        conn.close()


class SocketEvents(httpx2.SyncByteStream):
    """A stream's events, read from its connection as the caller iterates, framed as the engine
    loop's are (``EventStream`` splits them at once).  Dropped unfinished and unclosed, the daemon
    is told to stop the request."""

    def __init__(
        self,
        owner: DirectDaemon,
        conn: BlockingConnection,
        request_id: int,
        request: httpx2.Request,
        chat: bool,
        approve: Approve | None,
        timeout: float | None,
    ) -> None:
        self._owner, self._conn, self._id, self._request, self._approve = owner, conn, request_id, request, approve
        self._timeout = timeout
        self._frame: Callable[[bytes], bytes] = sse if chat else sse_event
        self._last = SSE_DONE if chat else b""
        self._first: bytes | None = None
        self._finished = False
        self._reader: int | None = None
        """The thread reading the connection now, if any: a ``close()`` from another one wakes it."""
        self._reading = threading.Lock()
        """Guards ``_finished`` and ``_reader`` together: a close never reads as a reader starts to."""
        self._finalizer = weakref.finalize(self, owner.abandon, conn, request_id)

    def first(self) -> APIFailure | None:
        """Waits for the first event (or the end of a stream without any); the request's failure."""
        try:
            self._first = self._read()
        except APIFailure as failure:
            return failure
        return None

    def __iter__(self) -> Iterator[bytes]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while not self._finished:
            try:
                framed = self._read()
            except APIFailure as failure:
                raise midstream_error(self._request, failure) from None
            if framed is not None:
                yield framed
        last, self._last = self._last, b""
        if last:
            yield last

    def _read(self) -> bytes | None:
        """The next event, framed; None at the end.  The request's failure is raised as
        :class:`APIFailure`; interrupted, the daemon is told to stop the request."""
        with self._reading:
            if self._finished:  # closed from another thread
                return None
            self._reader = threading.get_ident()
        try:
            item = read_next(self._conn, self._id, self._approve)
        except ConnectionForked:
            self._finish()
            raise APIFailure.opened_before_fork() from None
        except DaemonSilent:
            assert self._timeout is not None  # (listened for that long)
            self.abandon()
            raise unanswered(self._timeout) from None
        except ConnectionLost as exc:
            if self._woken_by_close():
                return None
            self._finish()
            raise connection_lost(why_lost(self._conn, exc)) from None
        except APIFailure:
            if self._woken_by_close():  # the daemon's "cancelled", which that close asked for
                return None
            self._finish()
            raise
        except BaseException:
            self.abandon()
            raise
        if self._woken_by_close():
            return None
        if isinstance(item, Done):
            self._finish()
            return None
        return self._frame(bytes(item))

    def _woken_by_close(self) -> bool:
        """Whether a ``close()`` from another thread ended the stream while this one read it; if so,
        the connection (woken, so broken) is let go here, as its reader is done with it."""
        with self._reading:
            self._reader = None
            closed = self._finished
        if closed:
            self._owner.release(self._conn)
        return closed

    def _finish(self) -> None:
        self._finished = True
        self._finalizer.detach()
        self._owner.release(self._conn)

    def abandon(self) -> None:
        """Interrupted: the daemon stops the request (not waited for) and the connection is closed."""
        if not self._finished:
            self._finished = True
            self._finalizer.detach()
            self._owner.abandon(self._conn, self._id)

    def close(self) -> None:
        """Closed before its end: the turn is stopped before this returns, as the engine loop's are.
        From another thread than one reading it (a "stop" button), the daemon is told to stop the
        turn, and the reader is woken (its iteration ends): two threads never read one socket."""
        with self._reading:
            if self._finished:
                return
            self._finished = True
            reader = self._reader
        self._finalizer.detach()
        if reader is not None and reader != threading.get_ident():
            self._conn.cancel(self._id)
            self._conn.wake()
            return
        self._owner.stop(self._conn, self._id)
