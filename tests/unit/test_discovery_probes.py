"""Probing Codex binaries under pressure: hung binaries, wrapper scripts, many callers at once.

A probe runs on a thread of its own (an event loop's default executor stays free for the work
queued behind it), concurrent callers of one binary share one run, and each probe command runs in
a process group of its own that is killed whole, so a wrapper's children do not outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from claif_cod.engine import discovery
from claif_cod.engine.discovery import ENV_CODEX_PATH, find_and_probe, probe
from claif_cod.engine.errors import CodexStartFailed

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="shell-script fakes and process groups")

SCHEMA = '{"definitions": {"AskForApproval": {"enum": ["untrusted", "never"]}}}'


@pytest.fixture(autouse=True)
def _quick_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "PROBE_TIMEOUT_S", 2.0)
    monkeypatch.delenv(ENV_CODEX_PATH, raising=False)


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def slow_codex(root: Path, delay: float = 0.5) -> Path:
    """A codex whose ``--version`` takes ``delay`` seconds; every run is logged in ``runs.log``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "schema.json").write_text(SCHEMA)
    return script(
        root / "codex",
        f"""echo "$*" >> "{root}/runs.log"
if [ "$1" = "--version" ]; then sleep {delay}; echo "codex-cli 4.5.6"; exit 0; fi
mkdir -p "$4/v2" && cp "{root}/schema.json" "$4/v2/ThreadStartParams.json"
""",
    )


def hung_codex(root: Path) -> Path:
    """A codex whose ``--version`` never answers (logged in ``runs.log``)."""
    return script(root / "codex", f'echo "$*" >> "{root}/runs.log"\nexec sleep 60\n')


def version_runs(codex: Path) -> int:
    log = codex.parent / "runs.log"
    return log.read_text().splitlines().count("--version") if log.exists() else 0


def gone(pid: int, within: float = 3.0) -> bool:
    """Whether ``pid`` is gone (or a zombie about to be reaped) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


# --- one run per binary, whoever asks --------------------------------------------------------


def test_concurrent_probes_of_one_binary_share_one_run(tmp_path: Path) -> None:
    codex = slow_codex(tmp_path)
    start = threading.Barrier(8)

    def ask() -> discovery.CodexBinary:
        start.wait()
        return probe(str(codex))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ask(), range(8)))
    assert {b.version for b in results} == {"4.5.6"}
    assert all(b is results[0] for b in results)
    assert version_runs(codex) == 1


async def test_concurrent_async_callers_of_a_hung_binary_share_one_run_and_all_get_its_error(tmp_path: Path) -> None:
    codex = hung_codex(tmp_path)
    results = await asyncio.gather(*(find_and_probe(str(codex)) for _ in range(8)), return_exceptions=True)
    assert all(isinstance(r, CodexStartFailed) and "--version" in str(r) for r in results), results
    assert "timed out" in str(results[0])
    assert version_runs(codex) == 1
    # A failure is not remembered: the next caller asks again (the binary may have been fixed).
    with pytest.raises(CodexStartFailed):
        await find_and_probe(str(codex))
    assert version_runs(codex) == 2


async def test_a_cancelled_caller_leaves_the_probe_to_the_others(tmp_path: Path) -> None:
    codex = slow_codex(tmp_path)
    first = asyncio.create_task(find_and_probe(str(codex)))
    second = asyncio.create_task(find_and_probe(str(codex)))
    await asyncio.sleep(0.2)
    first.cancel()
    assert (await asyncio.wait_for(second, 10)).version == "4.5.6"
    assert first.cancelled()
    assert version_runs(codex) == 1


# --- hung binaries do not hold the default executor ------------------------------------------


async def test_hung_probes_leave_the_default_executor_free(tmp_path: Path) -> None:
    """Three hung binaries, asked about by six callers, on a loop with a 2-worker default executor:
    work queued there (image decoding, directory checks) and a healthy binary's probe go on at once."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(2)
    loop.set_default_executor(executor)
    hung = [hung_codex(tmp_path / f"hung{i}") for i in range(3)]
    callers = [asyncio.create_task(find_and_probe(str(codex))) for codex in hung * 2]
    try:
        await asyncio.sleep(0.3)  # the hung probes are under way
        started = time.monotonic()
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "done"), 1.0) == "done"
        healthy = await asyncio.wait_for(find_and_probe(str(slow_codex(tmp_path / "ok", delay=0))), 1.5)
        assert healthy.version == "4.5.6"
        assert time.monotonic() - started < 1.5
        assert not any(c.done() for c in callers)
        results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 10)
        assert all(isinstance(r, CodexStartFailed) for r in results), results
        assert [version_runs(codex) for codex in hung] == [1, 1, 1]
    finally:
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)


# --- nothing left behind ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fails"),
    [
        # a wrapper whose real binary hangs (npm's codex is a Node wrapper): the probe times out
        ('sleep 60 &\necho $! >> "$(dirname "$0")/child.pid"\nwait\n', True),
        # a wrapper that fails at once, leaving a child behind that does not hold its pipes
        ('sleep 60 >/dev/null 2>&1 &\necho $! >> "$(dirname "$0")/child.pid"\nexit 3\n', True),
        # one that answers, and still leaves a child behind
        ('sleep 60 >/dev/null 2>&1 &\necho $! >> "$(dirname "$0")/child.pid"\necho "codex-cli 1.0.0"\n', False),
    ],
    ids=["timed-out", "failed", "answered"],
)
def test_a_probe_leaves_no_grandchild_behind(tmp_path: Path, body: str, fails: bool) -> None:
    codex = script(tmp_path / "wrapper" / "codex", body)
    pid_file = codex.parent / "child.pid"  # one line per run: --version, then the schema
    try:
        if fails:
            with pytest.raises(CodexStartFailed, match="--version"):
                probe(str(codex))
        else:
            assert probe(str(codex)).version == "1.0.0"
        pids = [int(line) for line in pid_file.read_text().split()]
        assert pids
        assert [pid for pid in pids if not gone(pid)] == [], "the wrapper's children outlived the probe"
    finally:
        for line in pid_file.read_text().split() if pid_file.exists() else ():
            with contextlib.suppress(ProcessLookupError):  # not to leave them behind when the test fails
                os.kill(int(line), signal.SIGKILL)


def test_a_failed_probe_says_what_the_binary_said_without_its_colours(tmp_path: Path) -> None:
    codex = script(
        tmp_path / "codex",
        "printf '\\033[2m2025-01-01\\033[0m \\033[31mERROR\\033[0m no runtime for this platform\\n' >&2\nexit 1\n",
    )
    with pytest.raises(CodexStartFailed) as info:
        probe(str(codex))
    message = str(info.value)
    assert "\x1b" not in message
    assert message.endswith(": 2025-01-01 ERROR no runtime for this platform")
