"""What the sync and async httpx transports share (:class:`TransportCore`): the engine loop, the
backend, the options and the callers' own daemon connections; a request's route to the backend, and
its reply as httpx's response.

A client and its copies hold one core; the transports that ``openai`` calls are
:mod:`claif_cod.transport.httpx_transport`'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import httpx2

from claif_cod._forked import call_after_fork
from claif_cod.engine.approvals import ApprovalHandler, ApprovalRequest, Decision, decline_all
from claif_cod.openai_compat.errors import APIFailure, ErrorDetail
from claif_cod.openai_compat.options import RequestOptions
from claif_cod.transport.backend import (
    SSE_HEADERS,
    JsonReply,
    Reply,
    StreamReply,
    pick_model,
)
from claif_cod.transport.direct_daemon import DirectDaemon
from claif_cod.transport.early import Early, OpenAIStream, StreamMaker
from claif_cod.transport.loop_daemon import LoopDaemon
from claif_cod.transport.loop_thread import LoopThread
from claif_cod.transport.select import DaemonMode, SelectingBackend
from claif_cod.transport.stored_routes import Query, check_retrieve_query, conversation_action, stored_response_action
from claif_cod.transport.stream_events import AsyncEvents, SyncEvents, failure_response
from claif_cod.transport.stream_objects import StreamObjects
from claif_cod.transport.timeout_value import timeout_seconds


class NoEngineLoop(OSError):
    """The engine's event loop or its thread could not be made: the process is out of file
    descriptors or threads.  Raised to openai as ``APIConnectionError`` (see :func:`_engine_loop`),
    as openai's own client fails when it cannot open a socket."""


class _CallerConnections(NamedTuple):
    """Callers' own connections to the daemon at ``path``: sync callers', and async callers' loops'."""

    path: Path
    sync: DirectDaemon
    loops: LoopDaemon

    def close(self) -> None:
        self.sync.close()
        self.loops.close()


_inherited: list[object] = []
"""In a forked child, the parent's engine state (see :meth:`TransportCore._after_fork`): kept, never used."""


class TransportCore:
    """Shared by the sync and async transports: the engine loop, the backend and the options."""

    def __init__(self, options: RequestOptions, mode: DaemonMode) -> None:
        self.options = options
        self.mode = mode
        self._backend: SelectingBackend | None = None
        self._timed_options: RequestOptions | None = None
        self._loop: LoopThread | None = None
        self._direct_connections: _CallerConnections | None = None
        self._lock = threading.RLock()
        """Reentrant: a client copy's finalizer (:meth:`_detach`) may run in a thread that holds it, at any
        allocation (starting the engine loop allocates plenty); it deadlocked that thread."""
        self.closed = False
        self._clients = 0
        call_after_fork(self, TransportCore._after_fork)

    def attach(self, client: object) -> None:
        """``client`` (the original or a copy) uses this core: it is released, as by :meth:`release`,
        once every client using it has been garbage-collected unclosed."""
        with self._lock:
            self._clients += 1
        weakref.finalize(client, self._detach).atexit = False  # at exit, loop_thread ends every loop

    def _after_fork(self) -> None:
        """In a forked child: the engine loop's thread is not here, and its Codex children and daemon
        connections are the parent's (two processes on one would mix their requests and answers).
        This process starts its own on its next request; the parent's are kept, never used (their
        pipes and sockets were let go of: :mod:`claif_cod._forked`)."""
        self._lock = threading.RLock()  # another thread may have held it at the fork
        _inherited.append((self._loop, self._backend, self._direct_connections))
        self._loop, self._backend, self._direct_connections = None, None, None

    def _detach(self) -> None:
        with self._lock:
            self._clients -= 1
            last = self._clients == 0
        if last:
            self.release()

    @property
    def backend(self) -> SelectingBackend | None:
        return self._backend

    @property
    def loop(self) -> LoopThread:
        with self._lock:
            if self.closed:
                raise RuntimeError("this client has been closed")
            if self._loop is None:
                try:
                    self._loop = LoopThread(cleanup=self._close_backend)
                except (OSError, RuntimeError) as exc:  # RuntimeError: "can't start new thread"
                    raise NoEngineLoop(f"claif_cod could not start its engine loop: {exc}") from exc
            return self._loop

    async def respond(
        self,
        request: httpx2.Request,
        body: bytes,
        stream: Callable[[AsyncIterator[bytes]], httpx2.SyncByteStream | httpx2.AsyncByteStream],
        early: Early | None,
        caller: asyncio.AbstractEventLoop | None = None,
    ) -> httpx2.Response:
        """Runs on the engine loop: ``request`` answered as httpx's response (by ``early``'s dispatch
        when ``create()`` started it). A stream's events are handed to ``stream`` (which starts
        pumping them) here, so the first chunk is on its way to the caller while it sets up
        openai's ``Stream``."""
        try:
            if early is not None:
                assert early.task is not None  # claimed only once dispatched
                reply = await early.task
            else:
                reply = await self.dispatch(
                    request.method,
                    _path(request.url),
                    body,
                    read_timeout_of(request),
                    request.url.params.multi_items(),
                    caller,
                )
        except APIFailure as failure:
            return failure_response(request, failure)
        if isinstance(reply, JsonReply):
            return _response(request, reply)
        return _stream_response(request, reply, stream)

    def answer(self, early: Early, stream: StreamMaker | None) -> bytes | OpenAIStream | None:
        """``early`` dispatched and waited for in one round trip to the engine loop, and claimed by
        ``create()`` itself when it succeeded: a JSON body, or openai's ``Stream`` of a stream's
        events; None (unclaimed) when it failed: openai's pipeline then claims it, to raise and
        maybe retry.  A stream's request, HTTP response and openai ``Stream`` are made on the engine
        loop while Codex works (:class:`StreamObjects`); its events start flowing once the
        dispatch succeeded."""
        direct = self._direct()
        if direct is not None:
            approve = None if self.options.approvals is decline_all else self._approve_on_loop
            reply = direct.sync.answer(early, self._options_for(early.timeout), stream, approve)
            if isinstance(reply, APIFailure):
                early.task = self.loop.run(_failing(reply))  # openai's pipeline claims it, to raise or retry
                return None
            if reply is not None:
                early.claimed = True
                return reply
        made: list[StreamObjects] = []
        return self.loop.run_task(
            lambda: self._dispatch_early(early, stream, SyncEvents, made),
            lambda task: self._answered(early, task, made),
            meanwhile=early.verify,
            hand_over=stream is not None,
        )

    def _direct(self) -> _CallerConnections | None:
        """The callers' own connections to the daemon (:mod:`claif_cod.transport.direct_daemon` for
        sync callers, :mod:`claif_cod.transport.loop_daemon` for async ones), once the engine loop's
        backend is connected to one."""
        backend = self._backend
        daemon = backend.daemon if backend is not None else None
        if daemon is None or not daemon.conn.alive:
            return None
        direct, path = self._direct_connections, daemon.conn.path
        if path is None:
            return None
        if direct is not None and direct.path == path:
            return direct
        with self._lock:  # the first request from here on, or the loop's connection moved to another socket
            direct = self._direct_connections
            if self.closed:
                return None
            if direct is None or direct.path != path:
                if direct is not None:
                    direct.close()
                direct = self._direct_connections = _CallerConnections(path, DirectDaemon(path), LoopDaemon(path))
            return direct

    def _approve_on_loop(self, request: ApprovalRequest) -> concurrent.futures.Future[Decision]:
        """A sync client's approval handler started on the engine loop, as for its requests there: for a
        request on a caller's own connection, whose thread reads on meanwhile (its deadline, its end)."""
        return asyncio.run_coroutine_threadsafe(_asked(self.options.approvals, request), self.loop.loop)

    async def answer_async(self, early: Early, stream: StreamMaker | None) -> bytes | OpenAIStream | None:
        caller = asyncio.get_running_loop()
        direct = self._direct()
        if direct is not None:
            reply = await direct.loops.answer(early, self._options_for(early.timeout, caller), stream)
            if isinstance(reply, APIFailure):
                early.task = await self.loop.run_async(_failing(reply))  # openai's pipeline claims it
                return None
            if reply is not None:
                early.claimed = True
                return reply
        events = functools.partial(AsyncEvents, caller)
        made: list[StreamObjects] = []
        return await self.loop.run_task_async(
            lambda: self._dispatch_early(early, stream, events, made, caller),
            lambda task: self._answered(early, task, made),
            hand_over=stream is not None,
        )

    def _dispatch_early(
        self,
        early: Early,
        stream: StreamMaker | None,
        events: Callable[[httpx2.Request], SyncEvents | AsyncEvents],
        made: list[StreamObjects],
        caller: asyncio.AbstractEventLoop | None = None,
    ) -> asyncio.Task[Reply]:
        """On the engine loop: the dispatch's task, the one the caller waits for (cancelled if it
        gives up), and for a stream, its objects to come (see :class:`StreamObjects`)."""
        loop = asyncio.get_running_loop()
        early.task = task = loop.create_task(
            self.dispatch("POST", early.path, early.body, early.timeout, caller=caller)
        )
        if stream is not None:
            made.append(StreamObjects(loop, stream, events))
        return task

    def _answered(
        self, early: Early, task: asyncio.Task[Reply], made: list[StreamObjects]
    ) -> bytes | OpenAIStream | None:
        """On the engine loop, once the dispatch is done: what :meth:`answer` returns."""
        objects = made[0] if made else None
        if early.abandoned or task.cancelled() or task.exception() is not None:
            if objects is not None:
                objects.drop()
            return None
        reply = task.result()
        if isinstance(reply, JsonReply):
            early.claimed = True
            return reply.body
        assert objects is not None  # a stream answers a request that asked for one
        built = objects.take()
        if built is None:  # making them failed (logged): openai's pipeline makes its own
            return None
        early.claimed = True
        if reply.headers:
            built.response.headers.update(reply.headers)
        built.events.start(reply.events)
        early.stream = built.response
        return built.stream

    async def begin(
        self, path: str, body: bytes, timeout: float | None, caller: asyncio.AbstractEventLoop | None = None
    ) -> asyncio.Task[Reply]:
        """Runs on the engine loop: a ``POST`` to ``path`` dispatched ahead of its HTTP request (see
        :mod:`claif_cod.transport.early`), returned once its first step ran, so that its first
        message to Codex is out."""
        task = asyncio.get_running_loop().create_task(self.dispatch("POST", path, body, timeout, caller=caller))
        await asyncio.sleep(0)
        return task

    async def dispatch(
        self,
        method: str,
        path: str,
        body: bytes,
        timeout: float | None,
        query: Query = (),
        caller: asyncio.AbstractEventLoop | None = None,
    ) -> Reply:
        """Runs on the engine loop; ``path`` as sent (see :func:`_path`); ``caller``: the event loop of an
        async client's request."""
        if self._backend is None:
            self._backend = SelectingBackend(self.mode)
        options = self._options_for(timeout, caller)
        route = path.rstrip("/").rsplit("/v1", 1)[-1]
        if method == "POST" and route == "/chat/completions":
            return await self._backend.chat(body, options)
        if method == "POST" and route == "/responses":
            return await self._backend.responses(body, options)
        if method == "POST" and route == "/responses/compact":
            return await self._backend.compact(body, options)
        if method == "GET" and route.startswith("/responses/") and route.count("/") == 2:
            check_retrieve_query(query)
            return await self._backend.retrieve_response(unquote(route.removeprefix("/responses/")), options)
        action = stored_response_action(method, route, query)
        if action is not None:
            return await self._backend.stored_response(action)
        conversation = conversation_action(method, route, query, body)
        if conversation is not None:
            return await self._backend.conversation(conversation)
        if method == "GET" and route == "/models":
            return await self._backend.models(options)
        if method == "GET" and route.startswith("/models/"):
            return await self._model(unquote(route.removeprefix("/models/")), options)
        raise APIFailure("status", 404, _not_implemented(method, path))

    def _options_for(self, timeout: float | None, caller: asyncio.AbstractEventLoop | None = None) -> RequestOptions:
        """The options with the client's timeout (openai sends the same one with nearly every request),
        and for an async client's request (from ``caller``), its approval handler run on that loop."""
        timed = self.options
        if timeout is not None:
            cached = self._timed_options
            if cached is None or cached.timeout != timeout:
                cached = self._timed_options = dataclasses.replace(
                    self.options, timeout=timeout, timeout_source="the client's timeout"
                )
            timed = cached
        if caller is None or timed.approvals is decline_all:
            return timed
        return dataclasses.replace(timed, approvals=_on_loop(timed.approvals, caller))

    async def _model(self, model_id: str, options: RequestOptions) -> JsonReply:
        assert self._backend is not None
        return pick_model(await self._backend.models(options), model_id)

    async def _close_backend(self) -> None:
        """The loop's last work, however it ends: the daemon connection or the Codex children go first."""
        if self._backend is not None:
            await self._backend.aclose()

    def close(self) -> None:
        """Close and wait until the daemon connection or every Codex child is gone."""
        loop = self._mark_closed()
        if loop is not None:
            loop.stop()

    def release(self) -> None:
        """What an unclosed client's finalizer does: the same close, without waiting (any thread)."""
        loop = self._mark_closed()
        if loop is not None:
            loop.end()

    def _mark_closed(self) -> LoopThread | None:
        with self._lock:
            if self.closed:
                return None
            self.closed = True
            if self._direct_connections is not None:
                self._direct_connections.close()
            return self._loop


def _on_loop(handler: ApprovalHandler, caller: asyncio.AbstractEventLoop) -> ApprovalHandler:
    """An async client's approval handler, run on the loop of the request that asks: the handler may
    await that loop's futures and queues (an editor waiting for its user's answer)."""

    async def ask(request: ApprovalRequest) -> Decision:
        if asyncio.get_running_loop() is caller:  # a caller loop's own daemon connection
            return await handler(request)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_asked(handler, request), caller))

    return ask


async def _asked(handler: ApprovalHandler, request: ApprovalRequest) -> Decision:
    """The handler's answer, as a coroutine (a handler may return any awaitable)."""
    return await handler(request)


async def _failing(failure: APIFailure) -> asyncio.Task[Reply]:
    """On the engine loop: a dispatch that failed with ``failure``."""
    return asyncio.get_running_loop().create_task(_raise(failure))


async def _raise(failure: APIFailure) -> Reply:
    raise failure


def _detail(message: str, code: str) -> ErrorDetail:
    return ErrorDetail(message, "invalid_request_error", code)


def _not_implemented(method: str, path: str) -> ErrorDetail:
    return _detail(f"claif_cod does not implement {method} {path}", "unknown_url")


def _path(url: httpx2.URL) -> str:
    """The path as sent (percent-encoded, no query): it is cut into a route before ids are decoded."""
    return url.raw_path.split(b"?", 1)[0].decode("ascii")


def read_timeout_of(request: httpx2.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):
        value = timeout.get("read")
        return timeout_seconds(float(value)) if value is not None else None
    return None


def _response(request: httpx2.Request, reply: JsonReply) -> httpx2.Response:
    headers = {"content-type": "application/json", **reply.headers}
    return httpx2.Response(200, headers=headers, content=reply.body, request=request)


def _stream_response(
    request: httpx2.Request,
    reply: StreamReply,
    stream: Callable[[AsyncIterator[bytes]], httpx2.SyncByteStream | httpx2.AsyncByteStream],
) -> httpx2.Response:
    return httpx2.Response(200, headers={**SSE_HEADERS, **reply.headers}, stream=stream(reply.events), request=request)
