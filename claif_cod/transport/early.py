"""A request handed to the engine before openai builds its HTTP request.

Between ``create()`` and the transport, openai spends ~0.2-0.4 ms building the request (options,
headers, URL, httpx's ``Request`` and ``send``).  ``create()`` (``chat.completions`` and
``responses``) already holds the body, so it starts the dispatch first and Codex works on the turn
while that code runs.  The transport claims the started dispatch for the one request that is
exactly it (method, route, body bytes, read timeout); a retry or any other request is dispatched
as usual.  A dispatch nobody claimed (openai failed before reaching the transport) is stopped, and
waited for, before ``create()`` returns or raises, as a request the caller cancels is: its turn is
interrupted, and a response whose id the caller never saw is not kept.

When openai would only build its object or ``Stream`` from the response (no raw response asked
for), ``create()`` need not send the request at all: it dispatches and waits in one round trip to
the engine loop (:func:`answered`, ``TransportCore.answer``) and builds openai's object from the
response as openai does.  A failure is left to openai's pipeline, which claims the dispatch as
above, so that its exceptions and retries are openai's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
import openai

from claif_cod.transport.backend import Reply, StreamReply
from claif_cod.transport.loop_thread import LoopThread
from claif_cod.transport.timeout_value import timeout_seconds

CHAT_PATH = "/chat/completions"
RESPONSES_PATH = "/responses"


@dataclass
class Early:
    path: str
    body: bytes
    timeout: float | None
    task: asyncio.Task[Reply] | None = field(default=None, repr=False)
    """Set on the engine loop once dispatched."""
    claimed: bool = False
    stream: httpx2.Response | None = field(default=None, repr=False)
    """A stream's response, made for ``create()`` on the engine loop: closed by :func:`answered` if
    it never reached the caller (Ctrl-C, or cancelled, in that instant), which interrupts its turn."""
    verify: Callable[[], None] | None = field(default=None, repr=False)
    """What ``create()`` still checks in its own thread while the engine starts the turn (see
    :meth:`Starter.answer`); what it raises undoes the dispatch."""
    abandoned: bool = False
    """Set on the engine loop once the caller gave up on the answer: nothing claims it after that."""


OpenAIStream = openai.Stream[Any] | openai.AsyncStream[Any]


class StreamMaker(Protocol):
    """A stream's request and openai's ``Stream`` of its response: both made on the engine loop while
    Codex works on the turn (see ``TransportCore.answer``)."""

    def request(self) -> httpx2.Request: ...

    def __call__(self, response: httpx2.Response) -> OpenAIStream: ...


class Starter(Protocol):
    """What starts the dispatch: the transport core."""

    @property
    def loop(self) -> LoopThread: ...

    async def begin(
        self, path: str, body: bytes, timeout: float | None, caller: asyncio.AbstractEventLoop | None = None
    ) -> asyncio.Task[Reply]: ...

    def answer(self, early: Early, stream: StreamMaker | None) -> bytes | OpenAIStream | None:
        """The dispatch's answer (see :func:`answered`); ``early.verify`` runs in the caller's
        thread once the engine has started the turn, or before the request goes out."""

    async def answer_async(self, early: Early, stream: StreamMaker | None) -> bytes | OpenAIStream | None: ...


_current: ContextVar[Early | None] = ContextVar("claif_cod_early_chat", default=None)


def read_timeout(timeout: object) -> float | None:
    """The read timeout httpx will put on the request for openai's ``timeout`` (a number,
    ``httpx.Timeout`` or None), as the transport reads it back."""
    if isinstance(timeout, httpx2.Timeout):
        return None if timeout.read is None else timeout_seconds(timeout.read)
    return timeout_seconds(float(timeout)) if isinstance(timeout, (int, float)) else None


NO_ENGINE_LOOP = (RuntimeError, OSError)
"""What asking for the engine loop raises when there is none to have: the client is closed
(``RuntimeError``), or the loop or its thread could not be made (no file descriptors or threads
left).  The dispatch is then left to openai's own request, which reports it as openai does: its
own error for a closed client, ``APIConnectionError`` for the rest."""


def claim(request: httpx2.Request, body: bytes, timeout: float | None) -> Early | None:
    """The started dispatch this request is, once; None for anything else.  Called by the transport
    in the caller's context (the one ``create()`` set the dispatch in)."""
    early = _current.get()
    if early is None or early.claimed or request.method != "POST":
        return None
    if not request.url.path.endswith(early.path) or body != early.body or timeout != early.timeout:
        return None
    early.claimed = True
    return early


@contextlib.contextmanager
def started(core: Starter, path: str, body: bytes, timeout: float | None) -> Iterator[Early | None]:
    """Around a sync ``create()``: the dispatch runs from here on; unclaimed, it is undone.  None: the
    client is closed."""
    try:
        loop = core.loop
        task = loop.run(core.begin(path, body, timeout))
    except NO_ENGINE_LOOP:
        yield None
        return
    early = Early(path, body, timeout, task)
    token = _current.set(early)
    try:
        yield early
    finally:
        _current.reset(token)
        if not early.claimed:
            _settled(loop, _undo(task))


@contextlib.asynccontextmanager
async def started_async(core: Starter, path: str, body: bytes, timeout: float | None) -> AsyncIterator[Early | None]:
    try:
        loop = core.loop
        task = await loop.run_async(core.begin(path, body, timeout, asyncio.get_running_loop()))
    except NO_ENGINE_LOOP:
        yield None
        return
    early = Early(path, body, timeout, task)
    token = _current.set(early)
    try:
        yield early
    finally:
        _current.reset(token)
        if not early.claimed:
            await _settled_async(loop, _undo(task))


@contextlib.contextmanager
def answered(
    core: Starter,
    path: str,
    body: bytes,
    timeout: float | None,
    stream: StreamMaker | None,
    verify: Callable[[], None] | None = None,
) -> Iterator[bytes | OpenAIStream | None]:
    """Around a sync ``create()`` that openai would only build its object for: the dispatch's JSON
    body or openai's ``Stream`` of its events, or None when it failed (then left, unclaimed, for
    openai's pipeline) or the client is closed (openai's own request reports it).  Unclaimed, it is
    undone.  ``verify`` runs while the engine starts the turn; what it raises is raised here, once
    the dispatch is undone."""
    try:
        loop = core.loop
    except NO_ENGINE_LOOP:
        yield None
        return
    early = Early(path, body, timeout, verify=verify)
    delivered = False
    try:
        try:
            reply = core.answer(early, stream)
        except RuntimeError:
            if early.task is not None:
                raise
            reply = None  # closed before the dispatch began: openai's own request reports it
        delivered = True
        token = _current.set(early)
        try:
            yield reply
        finally:
            _current.reset(token)
    finally:
        if not delivered and early.task is not None:
            _settled(loop, _abandon(early))
            if early.stream is not None:  # claimed and made before that: closing it interrupts the turn
                early.stream.close()
        elif not early.claimed and early.task is not None:
            _settled(loop, _undo(early.task))


@contextlib.asynccontextmanager
async def answered_async(
    core: Starter, path: str, body: bytes, timeout: float | None, stream: StreamMaker | None
) -> AsyncIterator[bytes | OpenAIStream | None]:
    try:
        loop = core.loop
    except NO_ENGINE_LOOP:
        yield None
        return
    early = Early(path, body, timeout)
    delivered = False
    try:
        try:
            reply = await core.answer_async(early, stream)
        except RuntimeError:
            if early.task is not None:
                raise
            reply = None  # closed before the dispatch began: openai's own request reports it
        delivered = True
        token = _current.set(early)
        try:
            yield reply
        finally:
            _current.reset(token)
    finally:
        if not delivered and early.task is not None:
            await _settled_async(loop, _abandon(early))
            if early.stream is not None:  # claimed and made before that: closing it interrupts the turn
                await early.stream.aclose()
        elif not early.claimed and early.task is not None:
            await _settled_async(loop, _undo(early.task))


def _settled(loop: LoopThread, coro: Coroutine[Any, Any, None]) -> None:
    """``coro`` run on the engine loop to settle a dispatch; a loop ending meanwhile (the client closed
    while its request ran) ends the dispatch with it, and its ending is not the caller's error."""
    try:
        loop.run(coro)
    except RuntimeError:
        if not loop.shut:
            raise


async def _settled_async(loop: LoopThread, coro: Coroutine[Any, Any, None]) -> None:
    try:
        await loop.run_async(coro)
    except RuntimeError:
        if not loop.shut:
            raise


async def _abandon(early: Early) -> None:
    """The caller will not take the answer (Ctrl-C, cancelled, or ``verify`` raised): on the engine
    loop, where it is claimed, so that whether it was is settled; unclaimed, it is undone."""
    early.abandoned = True
    if not early.claimed and early.task is not None:
        await _undo(early.task)


async def _undo(task: asyncio.Task[Reply]) -> None:
    """Stop the dispatch: cancelled while it runs; a stream it already began is closed, which
    interrupts its turn.  A request that already completed cannot be taken back (openai would have
    had to fail for longer than the whole turn took)."""
    task.cancel()
    await asyncio.wait({task})
    if task.cancelled() or task.exception() is not None:
        return
    reply = task.result()
    if isinstance(reply, StreamReply):
        await reply.events.aclose()
