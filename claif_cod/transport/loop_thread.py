"""A private event loop in a daemon thread, where the engine and its Codex children live.

Sync callers cannot await, and async callers' loops come and go (``asyncio.run`` per
call), while warm Codex processes must outlive both; so the engine gets a loop of its own
and callers reach it by handing it tasks and waiting for their outcome.

A script may never close its client. So the loop ends itself in order, whoever asks: its
owner's ``cleanup`` first (closing the daemon connection or the Codex children), then every
task left, then the loop. At interpreter exit every loop still running is ended that way
and waited for, before the interpreter tears down what those tasks use.
"""

from __future__ import annotations

import _thread
import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from claif_cod.chained_stream import ChainedStream

T = TypeVar("T")
R = TypeVar("R")

CLEANUP_TIMEOUT_S = 10.0
"""How long an owner's cleanup may take (the Codex kill ladder needs at most a few seconds)."""

HAND_OVER_WAIT_S = 0.0005
"""How long the engine loop waits for a waiter it hands the GIL to (see :class:`HandOver`): ~0.03 ms
usually; one that cannot run sooner is left to take its turn."""

_running: set[LoopThread] = set()
_running_lock = threading.RLock()
"""Reentrant: a finalizer may end a loop from inside a critical section of the same thread."""
_inherited: list[LoopThread] = []
"""In a forked child, the loops that ran in its parent: their threads, tasks and Codex children are
the parent's, so nothing here runs or ends them.  They are kept and never freed (freeing a loop
that still believes it runs, and its pending tasks, would be reported)."""


def _after_fork_in_child() -> None:
    global _running_lock
    _running_lock = threading.RLock()  # another thread may have held it at the fork
    _inherited.extend(_running)
    _running.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists (as in the daemon): every event of a turn passes through this loop, and
    uvloop's are about half the cost of asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopThread:
    def __init__(self, name: str = "claif-cod-engine", cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        self.loop = _new_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix=f"{name}-io")
        """The loop's default executor (``asyncio.to_thread``), ours to shut down: see :func:`_finish_tasks`."""
        self.loop.set_default_executor(self._executor)
        self._cleanup = cleanup
        self._ending = False
        self._taking = threading.Lock()
        """Held while work is handed to the loop, and while the loop stops taking any."""
        self._shut = False
        """Set as the loop ends: it takes nothing more, and runs what it took (see :meth:`_run`)."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        with _running_lock:
            _running.add(self)
        try:
            self._thread.start()
        except Exception:  # no thread left to have: nothing of this loop may stay behind
            with _running_lock:
                _running.discard(self)
            self._executor.shutdown(wait=False)
            self.loop.close()
            raise
        except BaseException:
            # Ctrl-C while ``start`` waited for the thread, which runs the loop: ended as any loop
            # ends, with nothing of its owner's to clean up. Closing the loop from here raised
            # "Cannot close a running event loop", which took the Ctrl-C's place: the request went
            # on (the client took it for a loop it could not make) and this loop ran for ever.
            self._cleanup = None
            self.end()
            raise

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            with self._taking:
                self._shut = True
            _finish_tasks(self.loop)  # what was handed to it before, its tasks cancelled with the rest
            self._executor.shutdown(wait=True)
        finally:
            self.loop.close()
            with _running_lock:
                _running.discard(self)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Block the calling thread until ``coro`` finishes on the engine loop."""
        return self.run_task(functools.partial(self.loop.create_task, coro), _outcome, timeout, refused=coro.close)

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the engine loop from another loop; cancelling us cancels it."""
        return await self.run_task_async(functools.partial(self.loop.create_task, coro), _outcome, refused=coro.close)

    def run_task(
        self,
        start: Callable[[], asyncio.Task[R]],
        then: Callable[[asyncio.Task[R]], T],
        timeout: float | None = None,
        *,
        refused: Callable[[], None] | None = None,
        meanwhile: Callable[[], object] | None = None,
        hand_over: bool = False,
    ) -> T:
        """Block the calling thread until the task ``start`` makes on the engine loop is done; then
        return what ``then`` makes of it there (or raise what it raised).  ``refused`` runs when the
        loop takes nothing (closed, or this is its own thread).  ``meanwhile`` runs in the calling
        thread once the task's first step is done (it waits for its first I/O): what the caller can
        do while the task waits instead of before it starts; what it raises cancels the task.
        ``hand_over``: the task's outcome is followed at once by more work on the engine loop (a
        stream's first chunk by the rest of Codex's burst): it is handed over (:class:`HandOver`).

        A task, a callback and a lock instead of ``run_coroutine_threadsafe``: every warm turn makes
        this round trip, and its concurrent future, condition and chained callbacks cost ~40 µs of it."""
        if threading.current_thread() is self._thread:
            if refused is not None:
                refused()
            raise RuntimeError("LoopThread.run called from its own loop")
        done = _held()
        handing = HandOver() if hand_over else None
        running = handing.waiting() if handing is not None else None
        outcome: list[Outcome] = []

        def finish(task: asyncio.Task[R]) -> None:
            outcome.append(self._made(then, task))
            done.release()
            if handing is not None:
                handing.hand_over()

        begun = _held() if meanwhile is not None else None
        task: list[asyncio.Task[R]] = []
        try:  # from the moment the work may be on the loop: a Ctrl-C in between must not leave it running
            self._start(start, finish, refused, begun, task)
            deadline = None if timeout is None else time.monotonic() + timeout
            if meanwhile is not None and begun is not None:
                if not begun.acquire(timeout=_left(deadline)):
                    raise TimeoutError
                meanwhile()
            if not done.acquire(timeout=_left(deadline)):
                raise TimeoutError
            if handing is not None and running is not None:
                handing.running(running)
        except BaseException:  # Ctrl-C, a timeout or meanwhile's failure must not leave the work running
            self._cancel(task, refused)
            raise
        result: T = _unpacked(outcome[0])
        return result

    async def run_task_async(
        self,
        start: Callable[[], asyncio.Task[R]],
        then: Callable[[asyncio.Task[R]], T],
        *,
        refused: Callable[[], None] | None = None,
        hand_over: bool = False,
    ) -> T:
        """:meth:`run_task` for a caller on another event loop; cancelling us cancels the task.
        ``hand_over``: as there, until the caller's task runs again."""
        caller = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = caller.create_future()
        handing = HandOver() if hand_over and caller is not self.loop else None
        running = handing.waiting() if handing is not None else None

        def finish(task: asyncio.Task[R]) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                caller.call_soon_threadsafe(_settle, future, self._made(then, task))
                if handing is not None:
                    handing.hand_over()

        task: list[asyncio.Task[R]] = []
        self._start(start, finish, refused, None, task)
        try:
            outcome = await future
        except asyncio.CancelledError:
            self._cancel(task, refused)
            raise
        if handing is not None and running is not None:
            handing.running(running)
        result: T = _unpacked(outcome)
        return result

    def _start(
        self,
        start: Callable[[], asyncio.Task[R]],
        finish: Callable[[asyncio.Task[R]], None],
        refused: Callable[[], None] | None,
        begun: _thread.LockType | None,
        task: list[asyncio.Task[R]],
    ) -> None:
        """Runs ``start`` on the engine loop, from any other thread; ``task`` holds its task once it
        exists.  ``begun`` is released once the task's first step is done (the step was scheduled
        first, so it runs first).  A loop that has stopped taking work refuses it: handed over
        before, it is run as the loop ends (once queued behind its last step, it was never run, and
        its caller waited for ever)."""

        def begin() -> None:
            task.append(start())
            task[0].add_done_callback(finish)
            if begun is not None:
                self.loop.call_soon(begun.release)

        with self._taking:
            try:
                if self._shut:
                    raise RuntimeError("Event loop is closed")
                self.loop.call_soon_threadsafe(begin)
                return
            except RuntimeError as exc:  # the loop ends or is closed
                if refused is not None:
                    refused()
                refusal = exc
        wait_out_the_exit()  # ended by the interpreter's exit: as for work its end failed (not holding the lock)
        raise refusal

    def _made(self, then: Callable[[asyncio.Task[R]], T], task: asyncio.Task[R]) -> Outcome:
        """What ``then`` makes of ``task``, or what it raises; a task the loop's ending cancelled
        reports that, not a cancellation its waiter would take for its own."""
        if task.cancelled() and self._shut:
            return False, RuntimeError("Event loop is closed")
        try:
            return True, then(task)
        except BaseException as exc:  # raised in the caller's thread or loop
            return False, exc

    def _cancel(self, task: list[asyncio.Task[R]], refused: Callable[[], None] | None) -> None:
        """Cancel what :meth:`_start` started (callbacks run in order, so it exists by then); when
        :meth:`_start` was interrupted before it handed anything to the loop, the loop took nothing."""

        def cancel() -> None:
            if task:
                task[0].cancel()
            elif refused is not None:
                refused()

        with contextlib.suppress(RuntimeError):  # the loop is closed: the task ended with it
            self.loop.call_soon_threadsafe(cancel)

    def end(self) -> None:
        """Run the cleanup, then stop the loop; returns at once, from any thread (a finalizer's too)."""
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self._end_soon)

    def _end_soon(self) -> None:
        if not self._ending:  # on the loop's own thread: no race
            self._ending = True
            self.loop.create_task(self._end())

    async def _end(self) -> None:
        try:
            if self._cleanup is not None:
                with contextlib.suppress(Exception, asyncio.TimeoutError):  # ending must not fail
                    await asyncio.wait_for(self._cleanup(), CLEANUP_TIMEOUT_S)
        finally:
            self.loop.stop()

    def join(self, timeout: float | None = None) -> None:
        # (a thread never started has no ident: a Ctrl-C may land in ``start`` before it begins)
        if threading.current_thread() is not self._thread and self._thread.ident is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        """End the loop and wait for it."""
        self.end()
        self.join(CLEANUP_TIMEOUT_S + 5)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def shut(self) -> bool:
        """The loop has ended, or is ending and takes no more work (what it had is cancelled)."""
        return self._shut or self.loop.is_closed()


def _left(deadline: float | None) -> float:
    """A lock's wait until ``deadline`` (-1: no end)."""
    return -1 if deadline is None else max(0.0, deadline - time.monotonic())


def _held() -> _thread.LockType:
    """A lock already acquired, for one thread to wait on until another releases it."""
    lock = _thread.allocate_lock()
    lock.acquire()
    return lock


class HandOver:
    """A wait for what the engine loop gives, handed over: having given it, the loop waits (at most
    :data:`HAND_OVER_WAIT_S`) until the waiter runs.  With more to do at once (the rest of Codex's
    burst after a stream's chunk), the loop would otherwise take the GIL back after each I/O
    callback before the woken waiter got to run (~0.1-0.3 ms of a stream's first text).  The loop's
    side holds nothing else of the waiter's (a stream's pump holds it, not the stream)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock: _thread.LockType | None = None

    def waiting(self) -> _thread.LockType:
        """The waiter is about to wait: what it passes to :meth:`running` once it has what it waited for."""
        lock = self._lock = _held()
        return lock

    def running(self, lock: _thread.LockType) -> None:
        self._lock = None
        lock.release()  # (the waiter holds the GIL now, until it waits again)

    def hand_over(self) -> None:
        """On the engine loop, once given: at most one wait for each of the waiter's."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.acquire(timeout=HAND_OVER_WAIT_S)


def _outcome(task: asyncio.Task[T]) -> T:
    """A task's result; a cancelled one raises ``concurrent.futures``' ``CancelledError`` (an
    ``Exception``) in the caller, as ``run_coroutine_threadsafe``'s future did."""
    if task.cancelled():
        raise concurrent.futures.CancelledError
    return task.result()


def _unpacked(outcome: Outcome) -> Any:
    ok, value = outcome
    if ok:
        return value
    if not isinstance(value, StopAsyncIteration):  # (an end is not what ending the loops made)
        wait_out_the_exit()
    raise value


_exiting = False
"""Set as the interpreter's exit ends every loop (:func:`_end_all_at_exit`)."""


def wait_out_the_exit() -> None:
    """In a thread other than the main one while the interpreter exits (a daemon thread: Python has
    joined the others by then), wait for the end instead of raising what ending the loops made of
    its work: Python stops such a thread where it waits, as one reading a socket with openai's own
    client; raising would only print a traceback per thread ("Exception in thread ...")."""
    if _exiting and threading.current_thread() is not threading.main_thread():
        threading.Event().wait()


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():  # else the caller gave up
        future.set_result(outcome)


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does before closing its loop: no task is left pending for the GC to find.
    (Its ``shutdown_default_executor`` waits in a new thread, which CPython 3.12 refuses to start
    once the interpreter is exiting: the owner shuts its executor down itself, the loop being done.)"""
    loop.run_until_complete(asyncio.sleep(0))  # work handed over before it stopped taking any: it may start tasks
    while tasks := asyncio.all_tasks(loop):  # (a task cancelled may start another: a cleanup)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


@atexit.register
def _end_all_at_exit() -> None:
    """Unclosed clients' loops end before the interpreter does: quietly, and with no Codex child left."""
    global _exiting
    _exiting = True
    with _running_lock:
        threads = list(_running)
    for thread in threads:
        thread.end()
    for thread in threads:
        thread.join(CLEANUP_TIMEOUT_S + 5)


Outcome = tuple[bool, Any]
"""``(True, item)``, or ``(False, exception)`` once the iterator ended (``StopAsyncIteration``) or failed."""


class NobodyReads(Exception):
    """Raised by a :class:`Pump`'s ``deliver`` once what it hands over has nowhere to go (an async
    caller's event loop is closed): the pump stops, and closes its iterator, which ends its turn."""


class Pump(Generic[T]):
    """Drains an async iterator on the engine loop into ``deliver``, for a consumer in another thread.

    Made on the engine loop and started there (the first item is on its way before the consumer is
    ready for it); after that each item costs one hand-over instead of a round trip per item.
    :meth:`cancel`, from any thread, stops it and closes the iterator there.
    """

    _task: asyncio.Task[None]
    """Set by :meth:`start`, before the consumer sees the pump."""

    def __init__(self, deliver: Callable[[Outcome], None]) -> None:
        self._deliver = deliver
        self.closed = threading.Event()
        """Set once the iterator was closed on the engine loop."""
        self._loop = asyncio.get_running_loop()

    def start(self, iterator: AsyncIterator[T]) -> None:
        self._task = self._loop.create_task(self._drain(iterator))
        if isinstance(iterator, ChainedStream):
            for item in iterator.take_ready():  # made already: handed over now, not a loop step later
                self._deliver((True, item))

    async def _drain(self, iterator: AsyncIterator[T]) -> None:
        try:
            self._deliver(await self._drained(iterator))
        except NobodyReads:  # quietly: it was the task's exception, "never retrieved", with its traceback
            pass
        finally:
            try:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                self.closed.set()

    async def _drained(self, iterator: AsyncIterator[T]) -> Outcome:
        """Every item delivered; then the iterator's end, or its failure, for the consumer to raise."""
        try:
            async for item in iterator:
                self._deliver((True, item))
        except NobodyReads:
            raise
        except Exception as exc:
            return False, exc
        return False, StopAsyncIteration()

    def cancel(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the task ended with it
            self._loop.call_soon_threadsafe(self._task.cancel)

    def forked(self) -> None:
        """In a forked child, where the parent's engine thread that drains it is not: :attr:`closed` is
        set, as a new Event (another thread of the parent may have held the old one's lock at the fork,
        which setting it would wait for, for ever, in the fork itself)."""
        closed = threading.Event()
        closed.set()
        self.closed = closed
