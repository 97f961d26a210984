"""The engine loop's round trip: results, errors, cancellation and a closed loop, from a thread and from
another event loop; handing the GIL over to the caller, and a stream's first item handed over at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import inspect
import threading
import warnings
from collections.abc import AsyncGenerator, Callable, Iterator

import logged_locks
import pytest
from logged_locks import LockLog
from waiting import wait_until

from claif_cod.chained_stream import ChainedStream
from claif_cod.transport import loop_thread
from claif_cod.transport.loop_thread import LoopThread, Outcome, Pump


@pytest.fixture
def engine_loop() -> Iterator[LoopThread]:
    loop = LoopThread(name="test-engine")
    yield loop
    loop.stop()
    assert not loop.alive


async def _answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def _fail() -> None:
    await asyncio.sleep(0)
    raise ValueError("boom")


def test_run_returns_the_result_and_raises_the_error(engine_loop: LoopThread) -> None:
    assert engine_loop.run(_answer(7)) == 7
    with pytest.raises(ValueError, match="boom"):
        engine_loop.run(_fail())


def test_run_task_makes_its_answer_on_the_engine_loop(engine_loop: LoopThread) -> None:
    where: list[str] = []

    def then(task: asyncio.Task[int]) -> str:
        where.append(threading.current_thread().name)
        return f"got {task.result()}"

    assert engine_loop.run_task(lambda: engine_loop.loop.create_task(_answer(3)), then) == "got 3"
    assert where == ["test-engine"]


def test_meanwhile_runs_in_the_caller_once_the_work_waits(engine_loop: LoopThread) -> None:
    steps: list[str] = []
    go_on = threading.Event()

    async def work() -> str:
        steps.append("first step")
        await asyncio.to_thread(go_on.wait)  # waits, as a request for Codex's answer does
        steps.append("second step")
        return "done"

    def meanwhile() -> None:
        steps.append(f"meanwhile in {threading.current_thread().name}")
        go_on.set()

    start = lambda: engine_loop.loop.create_task(work())  # noqa: E731
    assert engine_loop.run_task(start, lambda task: task.result(), meanwhile=meanwhile) == "done"
    assert steps == ["first step", f"meanwhile in {threading.current_thread().name}", "second step"]


def test_what_meanwhile_raises_cancels_the_work(engine_loop: LoopThread) -> None:
    cancelled = threading.Event()

    def meanwhile() -> None:
        raise LookupError("not plain")

    start = lambda: engine_loop.loop.create_task(_until_cancelled(cancelled))  # noqa: E731
    with pytest.raises(LookupError, match="not plain"):
        engine_loop.run_task(start, lambda task: None, meanwhile=meanwhile)
    assert cancelled.wait(5)


def test_a_timeout_cancels_the_work(engine_loop: LoopThread) -> None:
    cancelled = threading.Event()
    with pytest.raises(TimeoutError):
        engine_loop.run(_until_cancelled(cancelled), timeout=0.05)
    assert cancelled.wait(5)


def test_a_ctrl_c_right_after_the_work_is_handed_to_the_loop_cancels_it(
    engine_loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal lands once the work may be on the loop, before the caller waits for it."""
    started: list[asyncio.Task[None]] = []

    def start() -> asyncio.Task[None]:
        started.append(engine_loop.loop.create_task(_until_cancelled(threading.Event())))
        return started[-1]

    hand_to_loop = engine_loop._start

    def then_interrupted(*args: object) -> None:
        hand_to_loop(*args)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(engine_loop, "_start", then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            engine_loop.run_task(start, lambda task: None)
    engine_loop.run(_answer(0))  # the loop has taken the cancel, and the work its next step
    assert started[0].cancelled()


def test_a_ctrl_c_before_anything_reached_the_loop_leaves_it_and_the_work_quiet(
    engine_loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[dict[str, object]] = []
    engine_loop.loop.call_soon_threadsafe(engine_loop.loop.set_exception_handler, lambda _, ctx: errors.append(ctx))

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    work = _answer(1)
    with monkeypatch.context() as patched:
        patched.setattr(engine_loop, "_start", interrupted)
        with pytest.raises(KeyboardInterrupt):
            engine_loop.run(work)
    assert engine_loop.run(_answer(2)) == 2  # after the cancel the interrupted call asked for
    assert errors == []
    assert inspect.getcoroutinestate(work) == inspect.CORO_CLOSED  # not left to warn that it was never awaited


async def _until_cancelled(cancelled: threading.Event) -> None:
    """Work that never ends by itself; ``cancelled`` is set once it is cancelled."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.set()
        raise


def test_work_cancelled_on_the_loop_raises_cancelled_error_in_the_caller(engine_loop: LoopThread) -> None:
    async def cancelled() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    with pytest.raises(concurrent.futures.CancelledError):
        engine_loop.run(cancelled())


def _never_awaited(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "never awaited" in str(w.message)]


def test_a_closed_loop_refuses_and_closes_the_coroutine(engine_loop: LoopThread) -> None:
    engine_loop.stop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError):
            engine_loop.run(_answer(1))
        gc.collect()
    assert _never_awaited(caught) == []


def test_work_handed_to_a_loop_before_it_ends_is_cancelled_as_the_loops_ending(
    engine_loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handed over behind the loop's end, it is run as the loop ends and cancelled with the rest: its
    caller hears of the loop's ending, not of a cancellation it would take for its own."""
    blocking, unblock, handed = threading.Event(), threading.Event(), threading.Event()
    start = engine_loop._start

    def start_and_tell(*args: object) -> None:
        start(*args)  # type: ignore[arg-type]
        handed.set()

    monkeypatch.setattr(engine_loop, "_start", start_and_tell)

    def block() -> None:
        blocking.set()
        unblock.wait(10)

    async def long() -> None:
        await asyncio.sleep(30)

    engine_loop.loop.call_soon_threadsafe(block)
    blocking.wait(10)
    engine_loop.end()  # queued behind the block, like the work below
    ended: list[BaseException] = []

    def wait_for_long() -> None:
        try:
            engine_loop.run(long())
        except BaseException as exc:
            ended.append(exc)

    waiting = threading.Thread(target=wait_for_long)
    waiting.start()
    handed.wait(10)
    unblock.set()
    engine_loop.join(10)
    waiting.join(10)
    assert [(type(e), str(e)) for e in ended] == [(RuntimeError, "Event loop is closed")]


def test_work_handed_to_a_loop_as_it_ends_is_refused_not_waited_for_ever(engine_loop: LoopThread) -> None:
    """The client closed while a request ran: work handed over once the loop had stopped, while it
    finished its tasks, was queued behind its last step and never run, and its caller waited for
    ever. It is refused at once now, its coroutine closed."""
    ending, unblock = threading.Event(), threading.Event()

    async def slow_to_cancel() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            ending.set()  # the loop has stopped and cancels what is left: it takes no more work
            unblock.wait(10)
            raise

    engine_loop.loop.call_soon_threadsafe(lambda: engine_loop.loop.create_task(slow_to_cancel()))
    engine_loop.end()
    ending.wait(10)
    assert engine_loop.shut and engine_loop.alive
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            engine_loop.run(_answer(2), timeout=5)  # (queued and never run: a TimeoutError)
        gc.collect()
    assert _never_awaited(caught) == []
    unblock.set()


def test_a_loop_whose_thread_cannot_start_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread left to have (``can't start new thread``): the error is raised, and neither the loop nor
    its place among the loops ended at exit stays (ending one that never ran would fail at exit)."""
    made: list[asyncio.AbstractEventLoop] = []
    new_loop = loop_thread._new_loop

    def recorded() -> asyncio.AbstractEventLoop:
        made.append(new_loop())
        return made[-1]

    def refuse(_thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(loop_thread, "_new_loop", recorded)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        LoopThread(name="test-no-thread")
    [loop] = made
    assert loop.is_closed()
    assert all(thread.loop is not loop for thread in loop_thread._running)


def test_a_ctrl_c_while_the_loops_thread_starts_is_raised_and_the_loop_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C while ``Thread.start`` waits for the new thread (a client's first request): the thread
    runs the loop already. Closing the loop from the caller's thread raised "Cannot close a running
    event loop" in the ``KeyboardInterrupt``'s place, which the client took for a loop it could not
    make: the request went on through openai's pipeline (to its timeout, against a stalled model), and
    the loop ran in its thread for ever. Now the Ctrl-C is raised and the loop ends, without its owner's
    cleanup (it has nothing to clean yet, and would close what the owner's next loop made)."""
    made: list[asyncio.AbstractEventLoop] = []
    threads: list[threading.Thread] = []
    cleaned: list[bool] = []
    new_loop, start = loop_thread._new_loop, threading.Thread.start

    def recorded() -> asyncio.AbstractEventLoop:
        made.append(new_loop())
        return made[-1]

    def interrupted(thread: threading.Thread) -> None:
        start(thread)
        threads.append(thread)
        raise KeyboardInterrupt

    async def cleanup() -> None:
        cleaned.append(True)

    with monkeypatch.context() as patched:
        patched.setattr(loop_thread, "_new_loop", recorded)
        patched.setattr(threading.Thread, "start", interrupted)
        with pytest.raises(KeyboardInterrupt):
            LoopThread(name="test-interrupted-start", cleanup=cleanup)
    [loop], [thread] = made, threads
    wait_until(lambda: not thread.is_alive(), "the loop's thread to end")
    assert loop.is_closed()
    assert all(running.loop is not loop for running in loop_thread._running)
    assert cleaned == []


def test_the_loop_cannot_wait_for_itself(engine_loop: LoopThread) -> None:
    async def nested() -> str:
        try:
            engine_loop.run(_answer(1))
        except RuntimeError as exc:
            return str(exc)
        return "ran"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "own loop" in engine_loop.run(nested())
        gc.collect()
    assert _never_awaited(caught) == []


def test_run_async_from_another_loop(engine_loop: LoopThread) -> None:
    async def caller() -> tuple[int, str]:
        value = await engine_loop.run_async(_answer(5))
        try:
            await engine_loop.run_async(_fail())
        except ValueError as exc:
            return value, str(exc)
        return value, "no error"

    assert asyncio.run(caller()) == (5, "boom")


def test_cancelling_the_async_caller_cancels_the_work(engine_loop: LoopThread) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def caller() -> None:
        waiting = asyncio.ensure_future(engine_loop.run_async(forever()))
        await asyncio.to_thread(started.wait, 5)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(caller())
    assert cancelled.wait(5)


def test_an_answer_for_a_caller_loop_that_is_gone_is_dropped(engine_loop: LoopThread) -> None:
    """The caller's loop was closed while the work ran (its waiting task never cancelled): the engine
    loop hands the answer to nobody, quietly, and keeps serving."""
    started, release = threading.Event(), threading.Event()
    errors: list[dict[str, object]] = []
    engine_loop.loop.set_exception_handler(lambda _loop, context: errors.append(context))

    async def slow() -> int:
        started.set()
        await asyncio.to_thread(release.wait, 5)
        return 1

    caller = asyncio.new_event_loop()
    caller.set_exception_handler(lambda _loop, _context: None)  # "Task was destroyed but it is pending"
    waiting = caller.create_task(engine_loop.run_async(slow()))
    caller.run_until_complete(asyncio.to_thread(started.wait, 5))
    caller.close()
    release.set()
    assert engine_loop.run(_answer(2)) == 2  # after the answer was handed to nobody
    assert errors == []
    del waiting


@pytest.fixture
def log_locks(monkeypatch: pytest.MonkeyPatch) -> Callable[..., LockLog]:
    """``log_locks(*names)``: the round trip's next locks, logged (see ``logged_locks``)."""
    return functools.partial(logged_locks.log_locks, monkeypatch)


def test_a_hand_over_holds_the_engine_loop_until_the_caller_runs(
    engine_loop: LoopThread, log_locks: Callable[..., LockLog]
) -> None:
    log = log_locks("done", "running")
    start = lambda: engine_loop.loop.create_task(_answer(4))  # noqa: E731
    assert engine_loop.run_task(start, lambda task: task.result(), hand_over=True) == 4
    engine_loop.run(_answer(0))  # the loop has gone on
    caller = threading.current_thread().name
    assert log == [
        ("test-engine", "done released"),
        (caller, "done acquired"),
        (caller, "running released"),
        ("test-engine", "running acquired"),
    ]


def test_without_a_hand_over_the_engine_loop_goes_on_at_once(
    engine_loop: LoopThread, log_locks: Callable[..., LockLog]
) -> None:
    log = log_locks("done", "next")
    start = lambda: engine_loop.loop.create_task(_answer(4))  # noqa: E731
    assert engine_loop.run_task(start, lambda task: task.result()) == 4
    assert [what for _, what in log] == ["done released", "done acquired"]


def test_a_hand_over_to_another_loop_holds_the_engine_loop_until_the_caller_task_runs(
    engine_loop: LoopThread, log_locks: Callable[..., LockLog]
) -> None:
    """The caller's loop may also run its task before the engine loop gets to wait for it (then there
    is nothing to wait for): that order is allowed, but the wait must be seen in a few tries."""

    async def caller() -> int:
        start = lambda: engine_loop.loop.create_task(_answer(6))  # noqa: E731
        answer = await engine_loop.run_task_async(start, lambda task: task.result(), hand_over=True)
        await engine_loop.run_async(_answer(0))  # the loop has gone on
        return answer

    released = (threading.current_thread().name, "running released")
    logs = []
    for _ in range(20):
        log = log_locks("running")
        assert asyncio.run(caller()) == 6
        assert log in ([released, ("test-engine", "running acquired")], [released])
        logs.append(log)
        if len(log) == 2:
            break
    assert len(logs[-1]) == 2, logs  # the engine loop waited for the caller's task


async def _items(closed: list[str]) -> AsyncGenerator[str, None]:
    try:
        yield "first"
        yield "second"
    finally:
        closed.append("items")


def test_a_pump_hands_over_a_prefetched_item_before_its_first_step(engine_loop: LoopThread) -> None:
    delivered: list[Outcome] = []
    closed: list[str] = []

    async def started() -> list[Outcome]:
        stream = ChainedStream(_items(closed), _nothing)
        await stream.prefetch()
        Pump(delivered.append).start(stream)
        return list(delivered)  # before the pump's task took a step

    assert engine_loop.run(started()) == [(True, "first")]
    engine_loop.run(_answer(0))
    assert delivered[:2] == [(True, "first"), (True, "second")]
    assert isinstance(delivered[2][1], StopAsyncIteration)
    assert closed == ["items"]


async def _nothing() -> None:
    pass
