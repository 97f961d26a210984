"""A Codex child dying inside claif-codd: its caller learns at once, other callers never notice."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from chat_messages import user
from daemon_process import DaemonProcess
from image_details import padded_png
from test_limits import async_wait_until

from claif_cod import AsyncCodexClient, CodexClient

pytestmark = [
    pytest.mark.codex,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and signals"),
]

KILL_BOUND_S = 1.0  # a correctness bound: a dead child must not leave its caller waiting


def ask(client: CodexClient, text: str) -> str:
    response = client.chat.completions.create(model="o4-mini", messages=[user(text)])
    return response.choices[0].message.content or ""


def codex_pids(daemon: DaemonProcess) -> dict[str, int]:
    """The daemon's app-server pid per working directory."""
    return {p["working_dir"]: p["pid"] for p in daemon.status_json()["processes"]}


def test_child_killed_mid_turn_fails_its_caller_only(daemon: DaemonProcess, workdir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with (
        CodexClient(daemon="require", working_dir=workdir) as victim,
        CodexClient(daemon="require", working_dir=elsewhere) as bystander,
        ThreadPoolExecutor(1) as pool,
    ):
        for client in (victim, bystander):  # one warm app-server per working directory
            assert ask(client, "warm") == "Echo: warm"
            assert client.backend is not None and client.backend.local is None  # served by the daemon
        pids = codex_pids(daemon)
        victim_pid, bystander_pid = pids[str(workdir)], pids[str(elsewhere)]
        assert victim_pid != bystander_pid

        words = " ".join(f"w{i}" for i in range(8))
        concurrent = pool.submit(ask, bystander, f"[[slow:300]] {words}")
        stream = victim.chat.completions.create(
            model="o4-mini", messages=[user("[[slow:500]] one two three four five six")], stream=True
        )
        chunks = iter(stream)
        assert "Echo" in (next(chunks).choices[0].delta.content or "")  # the victim's turn is under way

        os.killpg(victim_pid, signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(openai.APIConnectionError) as info:
            for _ in chunks:
                pass
        elapsed = time.monotonic() - killed
        assert not concurrent.done(), "the bystander's request was meant to be in flight during the kill"

        assert elapsed < KILL_BOUND_S, f"the caller learnt of the kill after {elapsed:.2f} s"
        assert f"pid {victim_pid}" in str(info.value)
        assert "killed by SIGKILL" in str(info.value)
        # The other working directory's request carries on to the end, on its own process.
        assert concurrent.result(timeout=60) == f"Echo: {words}"
        # The victim's next request gets a new process; the bystander's is the same one.
        assert ask(victim, "after") == "Echo: after"
        pids = codex_pids(daemon)
        assert pids[str(workdir)] != victim_pid
        assert pids[str(elsewhere)] == bystander_pid


def test_a_working_directory_that_is_not_there_is_a_bad_request_through_the_daemon(
    daemon: DaemonProcess, workdir: Path, tmp_path: Path
) -> None:
    """The daemon's engine says the same as the in-process one: the caller's setting to mend, a 400."""
    missing = tmp_path / "not-yet"
    with CodexClient(daemon="require", working_dir=missing) as client:
        with pytest.raises(openai.BadRequestError, match="does not exist or is not a directory") as refused:
            ask(client, "hi")
        assert client.backend is not None and client.backend.local is None  # the daemon said it
        assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "working_dir"
        missing.mkdir()
        assert ask(client, "now it is") == "Echo: now it is"


def test_a_working_directory_deleted_under_a_warm_process_is_a_bad_request_through_the_daemon(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    with CodexClient(daemon="require", working_dir=folder) as client:
        assert ask(client, "warm") == "Echo: warm"
        pid = codex_pids(daemon)[str(folder)]
        folder.rmdir()
        with pytest.raises(openai.BadRequestError, match="does not exist or is not a directory") as refused:
            ask(client, "hi")
        assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "working_dir"
        folder.mkdir()
        assert ask(client, "back") == "Echo: back"
        assert codex_pids(daemon)[str(folder)] == pid


HUNG_CODEX = """#!/bin/sh
echo "$$" >> "{started}"
exec sleep 3600
"""


async def test_binaries_whose_probe_hangs_do_not_hold_up_other_clients(
    daemon: DaemonProcess, workdir: Path, tmp_path: Path
) -> None:
    """Eight clients on eight binaries whose ``--version`` hangs held the daemon's default executor
    (its six workers) for the probes' 30 s: another client's image, its first request, waited."""
    started = tmp_path / "probes-started"
    hung = []
    for i in range(8):  # eight binaries: eight probes (one binary's callers share one)
        binary = tmp_path / f"hung-{i}" / "codex"
        binary.parent.mkdir()
        binary.write_text(HUNG_CODEX.format(started=started))
        binary.chmod(0o755)
        hung.append(AsyncCodexClient(daemon="require", codex_path=str(binary), max_retries=0))
    healthy = AsyncCodexClient(daemon="require", max_retries=0)
    try:
        stuck = [asyncio.create_task(c.chat.completions.create(model="o4-mini", messages=[user("hi")])) for c in hung]
        await async_wait_until(lambda: started.exists() and len(started.read_text().split()) == 8, what="8 probes")
        large = "data:image/png;base64," + base64.b64encode(padded_png(1_400_000)).decode()  # decoded off the loop
        image = {"type": "image_url", "image_url": {"url": large}}
        reply = await healthy.chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": [{"type": "text", "text": "look"}, image]}]
        )
        assert reply.choices[0].message.content == "Echo: look"
        assert not any(task.done() for task in stuck)  # answered while every probe still hangs
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
    finally:
        for client in (*hung, healthy):
            await client.close()
