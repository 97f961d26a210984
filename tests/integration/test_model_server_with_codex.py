"""The real Codex binary against the offline model: proves the wire format is what Codex expects."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex
TIMEOUT_S = 4.0


Events = list[dict[str, Any]]


def codex_exec(codex: Path, cwd: Path, *args: str, home: Path | None = None) -> tuple[int, Events]:
    """Run ``codex exec --json`` to completion and return its exit code and JSONL events."""
    env = {**os.environ, "CODEX_HOME": str(home)} if home else None
    result = subprocess.run(
        [str(codex), "exec", "--json", "--skip-git-repo-check", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.returncode, events


def final_message(events: Events) -> str:
    messages: list[str] = [
        e["item"]["text"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"
    ]
    return messages[-1]


def input_words(body: dict[str, Any]) -> int:
    return sum(len(part["text"].split()) for item in body["input"] for part in item.get("content", []))


def test_exec_prints_the_echo_as_final_message(
    codex_binary: Path, codex_home: Path, tmp_path: Path, codex_model_server: ModelServer
) -> None:
    code, events = codex_exec(codex_binary, tmp_path, "hello from the test")
    assert code == 0
    assert final_message(events) == "Echo: hello from the test"
    assert not [e for e in events if e["type"] == "item.completed" and e["item"]["type"] == "error"]
    [request] = codex_model_server.requests
    assert request.path == "/v1/responses"
    assert request.body["model"] == "o4-mini"
    assert request.messages() == [("user", "hello from the test")]


def test_usage_in_turn_completed_is_what_the_server_computed(
    codex_binary: Path, codex_home: Path, tmp_path: Path, codex_model_server: ModelServer
) -> None:
    code, events = codex_exec(codex_binary, tmp_path, "count my words [[reasoning]]")
    assert code == 0
    [request] = codex_model_server.requests
    usage = events[-1]["usage"]
    assert events[-1]["type"] == "turn.completed"
    assert usage["input_tokens"] == input_words(request.body)
    assert usage["cached_input_tokens"] == 0
    assert usage["output_tokens"] == 4 + 7  # one per delta of "Echo: count my words", plus reasoning
    assert usage["reasoning_output_tokens"] == 7


def test_http_500_fails_the_turn(codex_binary: Path, codex_home: Path, tmp_path: Path) -> None:
    code, events = codex_exec(codex_binary, tmp_path, "break [[status:500]]")
    assert code == 1
    assert events[-1]["type"] == "turn.failed"


def test_flaky_stream_is_retried_and_the_retry_hits_the_cache(
    codex_binary: Path, tmp_path: Path, codex_model_server: ModelServer
) -> None:
    home = write_codex_home(tmp_path / "retrying_home", codex_model_server.url, stream_max_retries=1)
    code, events = codex_exec(codex_binary, tmp_path, "try twice [[flaky]]", home=home)
    assert code == 0
    assert final_message(events) == "Echo: try twice"
    first, retry = codex_model_server.requests
    assert retry.body["input"] == first.body["input"]
    assert events[-1]["usage"]["cached_input_tokens"] == input_words(first.body)


def test_tool_call_round_trip(
    codex_binary: Path, codex_home: Path, tmp_path: Path, codex_model_server: ModelServer
) -> None:
    code, events = codex_exec(codex_binary, tmp_path, "run it [[tool:echo tool-ran]]")
    assert code == 0
    assert any(e["type"] == "item.completed" and e["item"]["type"] == "command_execution" for e in events)
    assert final_message(events).startswith("Tool said: ")
    _, follow_up = codex_model_server.requests
    assert follow_up.body["input"][-1]["type"] == "function_call_output"


def test_resumed_thread_is_turn_two(codex_binary: Path, codex_home: Path, tmp_path: Path) -> None:
    _, events = codex_exec(codex_binary, tmp_path, "first")
    thread_id = events[0]["thread_id"]
    code, events = codex_exec(codex_binary, tmp_path, "resume", thread_id, "second")
    assert code == 0
    assert final_message(events) == "[turn 2] Echo: second"


def test_app_server_lists_the_test_models(codex_binary: Path, codex_home: Path, tmp_path: Path) -> None:
    requests = [
        {
            "id": 1,
            "method": "initialize",
            "params": {"clientInfo": {"name": "t", "version": "0"}, "capabilities": {"experimentalApi": True}},
        },
        {"method": "initialized"},
        {"id": 2, "method": "model/list", "params": {}},
    ]
    with subprocess.Popen(
        [str(codex_binary), "app-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    ) as proc:
        watchdog = threading.Timer(TIMEOUT_S, proc.kill)  # a hung server ends the readline loop below
        watchdog.start()
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write("".join(json.dumps(r) + "\n" for r in requests))
            proc.stdin.flush()
            answer = next(m for m in map(json.loads, proc.stdout) if m.get("id") == 2)
        finally:
            watchdog.cancel()
            proc.kill()
    assert [m["id"] for m in answer["result"]["data"]] == ["o4-mini", "o4", "gpt-test-large"]
