"""What an interrupted turn's commands left running ends with the turn (Codex leaves it running:
openai/codex#42717); what a finished turn left running is the thread's, and stays."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from waiting import wait_until

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def pids(command: str) -> list[int]:
    """The processes of this user that run ``command`` (their whole command line)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            if (
                pid.isdigit()
                and Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip() == command.encode()
            ):
                found.append(int(pid))
        except OSError:
            continue
    return found


def running(command: str) -> bool:
    return bool(pids(command))


@pytest.fixture
def background() -> Iterator[str]:
    """A command for the model to leave running, ended after the test whatever happened."""
    command = f"sleep 42.{os.getpid()}"
    yield command
    for pid in pids(command):
        os.kill(pid, signal.SIGKILL)


def left_running(command: str, ready: Path) -> str:
    """A call to Codex's shell tool that comes back after 250 ms with ``command`` still running (a
    background terminal); ``ready`` appears once it is past that."""
    script = f"sleep 0.8 && touch {ready} && exec {command}"
    return "[[call:exec_command " + json.dumps({"cmd": f"sh -c '{script}'", "yield_time_ms": 250}) + "]]"


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


def test_a_command_a_finished_turn_left_running_stays(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, background: str, tmp_path: Path
) -> None:
    with CodexClient(daemon="off", sandbox_mode="danger-full-access", approval_policy="never") as client:
        ask = left_running(background, tmp_path / "ready")
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": ask}])
        assert "Process running with session ID" in (reply.choices[0].message.content or "")
        # (a dev server a turn started on purpose)
        wait_until(lambda: (tmp_path / "ready").exists() and running(background), "the command in the background")
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "next"}])
        assert running(background)


def test_what_an_answered_response_left_running_stays_when_its_turn_is_given_up(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, background: str, tmp_path: Path
) -> None:
    """The model ran a command beside a call to the caller's tool; the caller answered the call and
    went on with a message, which gives the waiting turn up: the response the caller had is done
    with, and what its command left running is left alone (a turn stopped before it answered has its
    commands ended: the test above)."""
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
    ask = left_running(background, tmp_path / "ready") + " [[call:get_weather {}]]"
    with CodexClient(daemon="off", sandbox_mode="danger-full-access", approval_policy="never") as client:
        response = client.responses.create(model="o4-mini", input=ask, tools=tools)  # type: ignore[arg-type]
        [call] = response.output
        assert call.type == "function_call"
        wait_until(lambda: (tmp_path / "ready").exists() and running(background), "the command in the background")
        history = [
            {"role": "user", "content": ask},
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
            {"role": "user", "content": "never mind"},
        ]
        after = client.responses.create(model="o4-mini", input=history, tools=tools)  # type: ignore[arg-type]
        assert after.output_text == "[turn 2] Echo: never mind"
        client.responses.create(model="o4-mini", input="one more turn, while a cleanup would have run")
        assert running(background)
