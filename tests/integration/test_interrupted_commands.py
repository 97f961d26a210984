"""What an interrupted turn's commands left running ends with the turn (Codex leaves it running:
openai/codex#42717); what a finished turn left running is the thread's, and stays."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import openai
import pytest
from waiting import wait_until

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def running(command: str) -> bool:
    """Whether a process of this user runs ``command`` (its whole command line)."""
    for pid in os.listdir("/proc"):
        try:
            if (
                pid.isdigit()
                and Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip() == command.encode()
            ):
                return True
        except OSError:
            continue
    return False


def test_a_command_a_timed_out_turn_started_is_ended(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    command = f"sleep 41.{os.getpid()}"  # unique to this test process
    failures: list[BaseException] = []
    with CodexClient(daemon="off", sandbox_mode="danger-full-access", approval_policy="never") as client:

        def ask() -> None:
            try:
                client.chat.completions.create(
                    model="o4-mini", messages=[{"role": "user", "content": f"[[tool:{command}]]"}], timeout=4
                )
            except BaseException as exc:
                failures.append(exc)

        asking = threading.Thread(target=ask)
        asking.start()
        wait_until(lambda: running(command), "the model's command to run")
        asking.join(30)
        assert [type(f) for f in failures] == [openai.APITimeoutError]
        wait_until(lambda: not running(command), "the interrupted turn's command to end", timeout=15)
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "after"}])
        assert reply.choices[0].message.content == "Echo: after"
