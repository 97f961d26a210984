"""A stream's events handed from the engine loop to its caller (a thread, or another event loop),
and failures raised as ``openai``'s own exceptions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import cast

import httpx2
import msgspec
import openai

from claif_cod._forked import call_after_fork
from claif_cod.engine.inbox import Inbox
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.transport.loop_thread import HandOver, NobodyReads, Outcome, Pump, wait_out_the_exit

_encoder = msgspec.json.Encoder()

with contextlib.suppress(ImportError, AttributeError):  # (an openai that does not stream through anyio)
    import anyio

    # openai's stream generators name anyio.EndOfStream in an except clause, which anyio imports lazily:
    # a stream closed by the garbage collector at interpreter exit would ask for it only then, and
    # print "ImportError: sys.meta_path is None". openai's own transport has asked for it by then.
    anyio.EndOfStream  # noqa: B018


def failure_response(request: httpx2.Request, failure: APIFailure) -> httpx2.Response:
    """Statuses become responses; connection problems and timeouts become openai's exceptions."""
    if failure.kind == "timeout":
        raise openai.APITimeoutError(request=request)
    if failure.kind == "connection":
        raise openai.APIConnectionError(message=str(failure), request=request)
    return httpx2.Response(
        failure.status,
        headers={"content-type": "application/json", **failure.headers},
        content=_encoder.encode(failure.body),
        request=request,
    )


_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def midstream_error(request: httpx2.Request, failure: APIFailure) -> openai.OpenAIError:
    """A failure after the response started: raised from the stream as openai's own class."""
    if failure.kind == "timeout":
        return openai.APITimeoutError(request=request)
    if failure.kind == "connection":
        return openai.APIConnectionError(message=str(failure), request=request)
    response = failure_response(request, failure)
    cls = _STATUS_ERRORS.get(
        failure.status, openai.InternalServerError if failure.status >= 500 else openai.APIStatusError
    )
    return cls(str(failure), response=response, body=msgspec.to_builtins(failure.detail))


def outcome_of(outcome: Outcome, request: httpx2.Request) -> bytes:
    """A chunk handed over, or the failure or end it stands for, raised as openai raises them."""
    ok, value = outcome
    if ok:
        return cast(bytes, value)
    if isinstance(value, StopAsyncIteration):
        # A new one: the stored one, raised from here, would hold this frame, which holds it (a
        # reference cycle, left for the collector, with the stream's objects, at every stream's end).
        raise StopAsyncIteration
    wait_out_the_exit()
    if isinstance(value, APIFailure):
        raise midstream_error(request, value) from None
    raise value


def _put(events: queue.SimpleQueue[Outcome], waiter: HandOver, outcome: Outcome) -> None:
    events.put(outcome)
    waiter.hand_over()


class SyncEvents(httpx2.SyncByteStream):
    """Chunks handed over by a :class:`Pump` into a thread-safe queue, once :meth:`start` ed, each
    to a reader that waits for it (:class:`HandOver`).  Made on the engine loop."""

    def __init__(self, request: httpx2.Request) -> None:
        self._request = request
        self._queue: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._waiter = HandOver()
        self._pump: Pump[bytes] = Pump(functools.partial(_put, self._queue, self._waiter))
        self._done = False
        call_after_fork(self, SyncEvents._forked)

    def _get(self) -> Outcome:
        with contextlib.suppress(queue.Empty):
            return self._queue.get_nowait()
        lock = self._waiter.waiting()
        try:
            return self._queue.get()
        finally:
            self._waiter.running(lock)

    def start(self, events: AsyncIterator[bytes]) -> SyncEvents:
        """On the engine loop: the events start flowing."""
        self._pump.start(events)
        # Dropped unread, no generator of ours ever runs to stop the pump: the turn would run to its end.
        self._dropped = weakref.finalize(self, self._pump.cancel)
        return self

    def __iter__(self) -> Iterator[bytes]:
        while not self._done:
            try:
                yield outcome_of(self._get(), self._request)
            except StopAsyncIteration:
                self._done = True
                self._dropped.detach()  # ended: nothing to stop
            except BaseException:
                # A midstream failure, or interrupted while waiting (Ctrl-C): the generator on the
                # engine loop is finished off there.
                self._done = True
                self._pump.cancel()
                raise

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._pump.cancel()
            self._pump.closed.wait(30)  # the turn is interrupted before close() returns
            # A reader waiting in another thread (a "stop" button's close()) ends as a reader in this
            # one would: the cancelled pump hands over nothing more, and it would wait for ever.
            self._queue.put(_CLOSED)

    def _forked(self) -> None:
        """In a forked child: these events come from the parent's engine thread, which is not here.
        Read on, they end in openai's ``APIConnectionError`` instead of a wait that never ends, and
        closing them does not wait for the parent's turn."""
        self._queue.put(_FORKED)
        self._pump.forked()


_FORKED: Outcome = (False, APIFailure.opened_before_fork())
_CLOSED: Outcome = (False, StopAsyncIteration())


def _deliver(caller: asyncio.AbstractEventLoop, queue: Inbox[Outcome], waiter: HandOver, outcome: Outcome) -> None:
    """Runs on the engine loop; a caller's loop that is gone (an ``asyncio.run`` ended with the stream
    unread and not yet collected) stops the pump, and its turn."""
    try:
        caller.call_soon_threadsafe(queue.put_nowait, outcome)
    except RuntimeError:  # "Event loop is closed"
        raise NobodyReads from None
    waiter.hand_over()


class AsyncEvents(httpx2.AsyncByteStream):
    """Chunks handed over by a :class:`Pump` to the caller's event loop, once :meth:`start` ed, each
    to a reader that waits for it (:class:`HandOver`).  Made on the engine loop."""

    def __init__(self, caller: asyncio.AbstractEventLoop, request: httpx2.Request) -> None:
        self._request = request
        self._queue: Inbox[Outcome] = Inbox()
        self._waiter = HandOver()
        # Not a method of ours: the pump would hold us, and we it (a cycle left for the collector).
        self._pump: Pump[bytes] = Pump(functools.partial(_deliver, caller, self._queue, self._waiter))
        self._done = False
        call_after_fork(self, AsyncEvents._forked)

    def start(self, events: AsyncIterator[bytes]) -> AsyncEvents:
        """On the engine loop: the events start flowing."""
        self._pump.start(events)
        self._dropped = weakref.finalize(self, self._pump.cancel)  # (as SyncEvents)
        return self

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._done:
            try:
                yield outcome_of(await self._get(), self._request)
            except StopAsyncIteration:
                self._done = True
                self._dropped.detach()  # ended: nothing to stop
            except BaseException:
                # A midstream failure, or cancelled while waiting: the generator on the engine loop is
                # finished off there.
                self._done = True
                self._pump.cancel()
                raise

    async def _get(self) -> Outcome:
        if not self._queue.empty():
            return self._queue.get_nowait()
        lock = self._waiter.waiting()
        try:
            return await self._queue.get()
        finally:
            self._waiter.running(lock)

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            self._pump.cancel()
            await asyncio.to_thread(self._pump.closed.wait, 30)
            self._queue.put_nowait(_CLOSED)  # a reader in another task ends (see SyncEvents.close)

    def _forked(self) -> None:
        """:meth:`SyncEvents._forked`, for a child that reads on in an event loop of its own."""
        self._queue.put_after_fork(_FORKED)
        self._pump.forked()
