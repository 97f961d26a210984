"""Codex children that crash, hang, babble or refuse to die, through ``CodexClient`` in-process.

Most tests drive ``tests/fakes/fake_codex.py`` (a scripted ``codex`` whose misbehaviour is
chosen by ``FAKE_CODEX_MODE`` or by markers in the turn text); the kill test also runs
against the real Codex binary and the offline model.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from chat_messages import user
from fake_codex_bin import write_fake_codex
from waiting import wait_until

import claif_cod.engine.liveness as liveness_module
import claif_cod.engine.pool as pool
from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.engine import wire
from claif_cod.engine.appserver import AppServer
from claif_cod.engine.engine import Engine
from claif_cod.engine.liveness import Liveness
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups, signals and /proc")

KILL_BOUND_S = 1.0  # a correctness bound: a dead child must not leave its caller waiting


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    """An executable ``codex`` that runs the fake with this venv's interpreter."""
    return write_fake_codex(tmp_path)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> Liveness:
    """Liveness deadlines short enough for tests (engines read the default when they are made)."""
    liveness = Liveness(request_timeout=1.0, probe_timeout=1.0, turn_silence=0.5, interrupt_grace=0.5, kill_grace=0.3)
    monkeypatch.setattr(liveness_module, "DEFAULT_LIVENESS", liveness)
    return liveness


@pytest.fixture
def fake_client(fake_codex: Path, workdir: Path, quick: Liveness) -> Iterator[CodexClient]:
    with CodexClient(daemon="off", codex_path=str(fake_codex), model="fake-model") as client:
        yield client


def engine_of(client: CodexClient) -> Engine:
    assert client.backend is not None
    local = client.backend.local
    assert isinstance(local, InProcessBackend)
    return local.engine


def pids(client: CodexClient) -> list[int]:
    return [server.pid for _, server, *_ in engine_of(client).processes()]


def ask(client: CodexClient, text: str, timeout: float | None = 60.0) -> str:
    response = client.chat.completions.create(model="fake-model", messages=[user(text)], timeout=timeout)
    return response.choices[0].message.content or ""


def is_gone(pid: int) -> bool:
    """Not running: no such process, or a zombie (which still answers kill(pid, 0))."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def reap(pid: int) -> None:
    """Collect a grandchild that the subreaper inherited (not a child asyncio is waiting for)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_gone(pid):
            return True
        time.sleep(0.02)
    return is_gone(pid)


PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Orphaned grandchildren come to this process rather than to PID 1, so we can reap and check them."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


# --- 2. a child killed mid-turn -----------------------------------------------------------------


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.codex)])
def any_codex_client(request: pytest.FixtureRequest, tmp_path: Path, workdir: Path) -> Iterator[CodexClient]:
    if request.param == "real":
        request.getfixturevalue("codex_home")  # the offline model, a private CODEX_HOME
        codex_path = None  # the bundled binary, found like a user's would be
    else:
        codex_path = str(request.getfixturevalue("fake_codex"))
    with CodexClient(daemon="off", codex_path=codex_path, model="o4-mini") as client:
        yield client


def test_child_killed_mid_turn_is_a_connection_error_within_a_second(any_codex_client: CodexClient) -> None:
    client = any_codex_client
    assert client.chat.completions.create(model="o4-mini", messages=[user("warm up")]).choices[0].message.content == (
        "Echo: warm up"
    )
    stream = client.chat.completions.create(
        model="o4-mini", messages=[user("[[slow:500]] one two three four five six")], stream=True
    )
    chunks = iter(stream)
    assert "Echo" in (next(chunks).choices[0].delta.content or "")  # the turn is under way
    [pid] = pids(client)

    os.killpg(pid, signal.SIGKILL)
    killed = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as info:
        for _ in chunks:
            pass
    elapsed = time.monotonic() - killed

    assert elapsed < KILL_BOUND_S, f"the caller learnt of the kill after {elapsed:.2f} s"
    assert f"pid {pid}" in str(info.value)
    assert "killed by SIGKILL" in str(info.value)
    # The same client goes on, on a new process.
    after = client.chat.completions.create(model="o4-mini", messages=[user("after the kill")])
    assert after.choices[0].message.content == "Echo: after the kill"
    [new_pid] = pids(client)
    assert new_pid != pid


def test_a_child_that_cannot_start_for_want_of_file_descriptors_says_so(fake_client: CodexClient) -> None:
    """uvloop reports the pipes it could not make as ``[Errno -1] Unknown error -1``: the error names
    what the process lacks, and with descriptors free again the same client starts Codex anew."""
    assert ask(fake_client, "warm up") == "Echo: warm up"
    [pid] = pids(fake_client)
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not pids(fake_client), "the engine to let the killed child go")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd")) - 1  # less the one listing them
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now, hard))
    try:
        with pytest.raises(openai.APIConnectionError, match="could not start") as failed:
            ask(fake_client, "no pipes")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "out of file descriptors" in str(failed.value) and f"the limit is {open_now})" in str(failed.value)
    assert ask(fake_client, "descriptors again") == "Echo: descriptors again"


def test_child_crashing_mid_turn_reports_its_exit_and_last_words(fake_client: CodexClient) -> None:
    with pytest.raises(openai.APIConnectionError) as info:
        ask(fake_client, "[[crash-mid-turn]] going down")
    message = str(info.value)
    assert "exited (code 1)" in message
    assert "crash-mid-turn requested" in message  # the child's stderr
    assert ask(fake_client, "still here") == "Echo: still here"


def test_child_killed_while_a_grandchild_holds_its_pipes_is_noticed_within_a_second(
    fake_codex: Path, workdir: Path, quick: Liveness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's exit, not the EOF of its stdout (which the grandchild keeps open), is the news."""
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CODEX_MODE", "ignore-sigterm-and-fork")
    monkeypatch.setenv("FAKE_CODEX_PIDFILE", str(pidfile))
    with subreaper(), CodexClient(daemon="off", codex_path=str(fake_codex)) as client:
        stream = client.chat.completions.create(
            model="fake-model", messages=[user("[[slow:300]] a b c d e f g")], stream=True
        )
        chunks = iter(stream)
        next(chunks)
        child, grandchild = map(int, pidfile.read_text().split())
        os.kill(child, signal.SIGKILL)  # the child only: the grandchild lives on, holding stdout and stderr
        killed = time.monotonic()
        with pytest.raises(openai.APIConnectionError, match="killed by SIGKILL"):
            for _ in chunks:
                pass
        assert time.monotonic() - killed < KILL_BOUND_S
        # What the dead leader left in its process group is killed without waiting for close().
        assert wait_gone(grandchild, 2), "the dead child's group was not cleaned up"
        reap(grandchild)
        monkeypatch.delenv("FAKE_CODEX_MODE")
        assert ask(client, "next") == "Echo: next"


# --- 3. a hung child ------------------------------------------------------------------------------


def test_hung_child_past_the_callers_deadline_is_killed_and_replaced(
    fake_client: CodexClient, quick: Liveness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No silence probe: the caller's deadline, the unanswered interrupt and its probe find the hang.
    quick = dataclasses.replace(quick, turn_silence=None)
    monkeypatch.setattr(liveness_module, "DEFAULT_LIVENESS", quick)  # before the client's engine is made
    assert ask(fake_client, "warm") == "Echo: warm"
    assert engine_of(fake_client).liveness.turn_silence is None
    [pid] = pids(fake_client)
    began = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(fake_client, "[[hang]] stop here", timeout=1.0)
    assert time.monotonic() - began < 1.0 + KILL_BOUND_S
    # Interrupt unanswered (interrupt_grace), probe unanswered (probe_timeout): killed (kill ladder).
    assert wait_gone(pid, quick.interrupt_grace + quick.probe_timeout + 2 * quick.kill_grace + 2.0)
    assert ask(fake_client, "after") == "Echo: after"
    assert pids(fake_client) != [pid]


@pytest.mark.codex
@pytest.mark.parametrize(
    ("sig", "error"), [(signal.SIGSTOP, openai.APITimeoutError), (signal.SIGKILL, openai.APIConnectionError)]
)
def test_a_session_whose_codex_hung_goes_on_on_its_own_thread_in_the_next_process(
    codex_home: Path,
    workdir: Path,
    quick: Liveness,
    codex_model_server: ModelServer,
    sig: signal.Signals,
    error: type[openai.APIError],
) -> None:
    """The next process started while the hung one, still being killed, held the session's thread:
    Codex refused to resume it ("already has an active writer", a 400), and the session started over.
    The failed turn, whose process went with it (hung or killed), is dropped once the thread is loaded."""
    with CodexClient(daemon="off", session_id="kept", model="o4-mini") as client:
        assert ask(client, "one") == "Echo: one"
        [pid] = pids(client)
        stream = client.chat.completions.create(
            model="o4-mini", messages=[user("[[long:300]] [[slow:20]] two")], stream=True, timeout=1.0
        )
        next(iter(stream))
        os.kill(pid, sig)  # hung, or gone, mid-answer
        with pytest.raises(error):
            list(stream)
        assert ask(client, "three") == "[turn 2] Echo: three"
        assert pids(client) != [pid]
    first, *_, last = codex_model_server.requests
    assert last.user_texts() == ["one", "three"]  # the failed turn dropped once its thread was loaded again
    assert last.body["prompt_cache_key"] == first.body["prompt_cache_key"]  # the session's own thread


def test_hung_child_without_a_deadline_is_found_by_the_probe(fake_client: CodexClient, quick: Liveness) -> None:
    assert ask(fake_client, "warm") == "Echo: warm"
    [pid] = pids(fake_client)
    began = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as info:
        ask(fake_client, "[[hang]] stop here", timeout=None)
    elapsed = time.monotonic() - began
    assert quick.turn_silence is not None
    assert elapsed < quick.turn_silence + quick.probe_timeout + KILL_BOUND_S
    assert "stopped responding" in str(info.value)
    assert f"pid {pid}" in str(info.value)
    assert wait_gone(pid, 2 * quick.kill_grace + 2.0)
    assert ask(fake_client, "after") == "Echo: after"


def test_quiet_turn_on_a_responsive_child_is_not_killed(fake_client: CodexClient, quick: Liveness) -> None:
    """Silence alone is not a hang: Codex waiting on a slow model still answers the probe."""
    assert ask(fake_client, "warm") == "Echo: warm"
    [pid] = pids(fake_client)
    # Two silence periods with nothing at all, then deltas further apart than turn_silence.
    assert ask(fake_client, "[[silent:1200]] [[slow:600]] [[reply:slow sure]]", timeout=None) == "slow sure"
    assert pids(fake_client) == [pid]


def test_unanswered_request_hits_its_deadline_and_the_hung_child_is_replaced(
    fake_client: CodexClient, quick: Liveness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = tmp_path / "hang-on"
    monkeypatch.setenv("FAKE_CODEX_HANG_ON", f"@{switch}")
    assert ask(fake_client, "warm") == "Echo: warm"
    [pid] = pids(fake_client)
    switch.write_text("thread/start")  # the running child hangs at the next thread/start
    began = time.monotonic()
    with pytest.raises(openai.APIConnectionError, match="stopped responding") as info:
        ask(fake_client, "never started", timeout=None)
    assert time.monotonic() - began < quick.request_timeout + quick.probe_timeout + KILL_BOUND_S
    assert f"pid {pid}" in str(info.value)
    assert wait_gone(pid, 2 * quick.kill_grace + 2.0)
    switch.unlink()
    assert ask(fake_client, "fresh start") == "Echo: fresh start"
    assert pids(fake_client) != [pid]


@pytest.mark.parametrize("hang_on", ["initialize", "thread/start", "turn/start"])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_the_callers_deadline_bounds_starting_codex_its_thread_and_its_turn(
    fake_codex: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, hang_on: str, api: str
) -> None:
    """A Codex hung before the turn ran held the request until its own limits (the 30 s handshake,
    a request's 30 s and the liveness probe), whatever its ``timeout``."""
    monkeypatch.setenv("FAKE_CODEX_HANG_ON", hang_on)
    with CodexClient(daemon="off", codex_path=str(fake_codex), model="fake-model", max_retries=0) as client:
        create: Callable[..., object] = (
            functools.partial(client.chat.completions.create, messages=[user("hi")])
            if api == "chat"
            else functools.partial(client.responses.create, input="hi")
        )
        began = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            create(model="fake-model", timeout=1.5)
        assert time.monotonic() - began < 1.5 + KILL_BOUND_S


def test_unanswered_request_on_a_responsive_child_times_out_alone(
    fake_client: CodexClient, quick: Liveness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = tmp_path / "ignore"
    monkeypatch.setenv("FAKE_CODEX_IGNORE", f"@{switch}")
    assert ask(fake_client, "warm") == "Echo: warm"
    [pid] = pids(fake_client)
    switch.write_text("model/list")
    began = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        fake_client.models.list()
    assert time.monotonic() - began < quick.request_timeout + quick.probe_timeout + KILL_BOUND_S
    switch.unlink()
    assert [m.id for m in fake_client.models.list()] == ["fake-model"]
    assert ask(fake_client, "still warm") == "Echo: still warm"
    assert pids(fake_client) == [pid]


# --- 4. the crash-loop breaker ----------------------------------------------------------------------


def test_crash_loop_breaker_fails_fast_then_recovers(
    fake_client: CodexClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = tmp_path / "starts.log"
    monkeypatch.setenv("FAKE_CODEX_LOG", str(starts))
    monkeypatch.setenv("FAKE_CODEX_MODE", "crash-on-start")
    monkeypatch.setattr(pool, "BACKOFF_START_S", 0.02)  # the back-off still grows, from less
    monkeypatch.setattr(pool, "CRASH_LOOP_COOLDOWN_S", 1.0)

    def spawned() -> int:
        return len(starts.read_text().splitlines()) if starts.exists() else 0

    for attempt in range(1, pool.CRASH_LOOP_THRESHOLD + 1):
        with pytest.raises(openai.APIConnectionError, match="did not complete its handshake") as info:
            ask(fake_client, "hi")
        assert "crash-on-start requested" in str(info.value)
        assert spawned() == attempt

    began = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as info:
        ask(fake_client, "hi")
    assert time.monotonic() - began < 0.5
    message = str(info.value)
    assert "keeps crashing on start" in message
    assert "crash-on-start requested" in message
    assert "not retrying for" in message
    assert spawned() == pool.CRASH_LOOP_THRESHOLD  # no spawn while the breaker is open

    # Codex is fixed and the cool-down passes: one start, which closes the breaker.
    monkeypatch.delenv("FAKE_CODEX_MODE")

    def after_the_cool_down() -> str | None:
        try:
            return ask(fake_client, "back")
        except openai.APIConnectionError as exc:  # fails fast, without a spawn, until the cool-down passed
            if "not retrying for" not in str(exc):
                raise
            return None

    deadline = time.monotonic() + 10
    while (answer := after_the_cool_down()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer == "Echo: back"
    assert spawned() == pool.CRASH_LOOP_THRESHOLD + 1

    # The success reset the breaker: a new failure is tried again rather than re-opening it at once.
    monkeypatch.setenv("FAKE_CODEX_MODE", "crash-on-start")
    [pid] = pids(fake_client)
    os.killpg(pid, signal.SIGKILL)
    assert wait_gone(pid, 2)
    for _ in range(2):
        with pytest.raises(openai.APIConnectionError, match="did not complete its handshake"):
            ask(fake_client, "hi")
    assert spawned() == pool.CRASH_LOOP_THRESHOLD + 3


def refused_every_time(client: CodexClient, setting: str, path: Path) -> None:
    """More requests than the crash-loop breaker lets fail, each a 400 naming ``setting``."""
    for _ in range(pool.CRASH_LOOP_THRESHOLD + 1):
        with pytest.raises(openai.BadRequestError) as refused:
            ask(client, "hi")
        assert refused.value.body == {
            "message": f"{setting} {path} does not exist or is not a directory",
            "type": "invalid_request_error",
            "param": setting,
            "code": None,
        }


def test_a_working_directory_that_is_not_there_is_the_callers_error_not_a_crash(
    fake_codex: Path, tmp_path: Path, quick: Liveness
) -> None:
    """Codex cannot start in it: a 400 naming ``working_dir`` (openai does not retry it), however often
    asked (the crash-loop breaker is for Codex's failures), and a start as soon as the directory exists."""
    missing = tmp_path / "not-yet"
    with CodexClient(daemon="off", codex_path=str(fake_codex), working_dir=missing, max_retries=2) as client:
        refused_every_time(client, "working_dir", missing)
        missing.mkdir()
        assert ask(client, "now it is") == "Echo: now it is"


@pytest.mark.codex
def test_a_working_directory_deleted_under_a_warm_process_is_refused_as_a_missing_one(
    codex_home: Path, tmp_path: Path
) -> None:
    """A warm process outlives its working directory: turns ran there (Codex's commands then fail in
    it), where a new process is refused. Refused the same way; the process stays for its return."""
    folder = tmp_path / "project"
    folder.mkdir()
    with CodexClient(daemon="off", working_dir=folder, max_retries=2) as client:
        assert ask(client, "warm") == "Echo: warm"
        [pid] = pids(client)
        folder.rmdir()
        refused_every_time(client, "working_dir", folder)
        folder.mkdir()
        assert ask(client, "back") == "Echo: back"
        assert pids(client) == [pid]


@pytest.mark.codex
def test_a_codex_home_that_is_not_there_is_the_callers_error_too(codex_home: Path, workdir: Path) -> None:
    """Codex refuses to start with a ``CODEX_HOME`` that is missing: a 400 naming ``codex_home``."""
    moved = codex_home.with_name("moved-away")
    with CodexClient(daemon="off", codex_home=str(codex_home)) as client:
        codex_home.rename(moved)
        refused_every_time(client, "codex_home", codex_home)
        moved.rename(codex_home)
        assert ask(client, "back home") == "Echo: back home"


def _handshakes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the Codex processes the engine sends ``initialize`` to, as it sends it."""
    pids: list[int] = []
    write = AppServer._write

    async def recorded(self: AppServer, message: object) -> None:
        await write(self, message)
        if isinstance(message, wire.OutgoingRequest) and message.method == "initialize":
            pids.append(self.pid)

    monkeypatch.setattr(AppServer, "_write", recorded)
    return pids


@pytest.mark.parametrize("how", ["ctrl-c", "task.cancel()"])
def test_a_request_cancelled_during_the_handshake_returns_once_its_codex_is_gone(
    fake_codex: Path, workdir: Path, quick: Liveness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A start-up holds its Codex home's turn until its process is gone: two Codex processes that
    initialise one home's state at once fail ("failed to initialize sqlite state runtime"). A request
    cancelled during the handshake is cancelled twice (by its waiter, then by the undoing of its
    dispatch), and the second cancellation ended the wait for the kill ladder at once: the caller got
    its ``KeyboardInterrupt`` (or ``CancelledError``) with that Codex still there, and in a fresh home
    the next request's start-up failed beside it (3 times in 20 with the real Codex)."""
    switch = tmp_path / "ignore"
    switch.write_text("initialize")  # never answered: the cancellation lands in the handshake
    monkeypatch.setenv("FAKE_CODEX_IGNORE", f"@{switch}")
    handshakes = _handshakes(monkeypatch)
    if how == "ctrl-c":
        client = CodexClient(daemon="off", codex_path=str(fake_codex))
        main = threading.get_ident()

        def ctrl_c() -> None:
            wait_until(lambda: bool(handshakes), "the handshake to begin")
            signal.pthread_kill(main, signal.SIGINT)

        interrupter = threading.Thread(target=ctrl_c)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            ask(client, "hello")
        interrupter.join()
    else:
        aclient = AsyncCodexClient(daemon="off", codex_path=str(fake_codex))

        async def cancelled() -> None:
            task = asyncio.ensure_future(aclient.chat.completions.create(model="fake-model", messages=[user("hello")]))
            await asyncio.to_thread(wait_until, lambda: bool(handshakes), "the handshake to begin")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancelled())
    [pid] = handshakes
    assert is_gone(pid), "the cancelled start-up left its Codex behind, still starting"
    switch.unlink()
    if how == "ctrl-c":
        assert ask(client, "next") == "Echo: next"
        client.close()
    else:
        answer = asyncio.run(aclient.chat.completions.create(model="fake-model", messages=[user("next")]))
        assert answer.choices[0].message.content == "Echo: next"
        asyncio.run(aclient.close())


# --- 5. the kill ladder ---------------------------------------------------------------------------


def test_close_leaves_neither_child_nor_grandchild(
    fake_codex: Path, workdir: Path, quick: Liveness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CODEX_MODE", "ignore-sigterm-and-fork")
    monkeypatch.setenv("FAKE_CODEX_PIDFILE", str(pidfile))
    with subreaper():
        client = CodexClient(daemon="off", codex_path=str(fake_codex))
        try:
            assert ask(client, "hello") == "Echo: hello"
            child, grandchild = map(int, pidfile.read_text().split())
            assert pids(client) == [child]
            assert os.getpgid(grandchild) == child
        finally:
            began = time.monotonic()
            client.close()
        # stdin EOF (ignored), SIGTERM (ignored), SIGKILL to the group.
        assert time.monotonic() - began < 2 * quick.kill_grace + 2.0
        for pid in (child, grandchild):
            assert wait_gone(pid, 5), f"pid {pid} outlived client.close()"
        reap(grandchild)
        assert not os.path.exists(f"/proc/{grandchild}")


# --- 6. garbage on stdout -----------------------------------------------------------------------------


def test_garbage_on_stdout_is_skipped_and_logged(
    fake_codex: Path, workdir: Path, quick: Liveness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FAKE_CODEX_MODE", "garbage")
    with (
        caplog.at_level(logging.WARNING, logger="claif_cod.appserver"),
        CodexClient(daemon="off", codex_path=str(fake_codex)) as client,
    ):
        assert ask(client, "one two three") == "Echo: one two three"
        stream = client.chat.completions.create(model="fake-model", messages=[user("four five")], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Echo: four five"
        [pid] = pids(client)
    skipped = [r for r in caplog.records if r.getMessage() == "appserver.bad_line"]
    assert len(skipped) >= 6
    assert any("this is not json" in str(getattr(r, "start", "")) for r in skipped)
    assert is_gone(pid) or wait_gone(pid, 2)
