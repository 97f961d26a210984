"""Caller tools through claif-codd: the daemon owns a suspended turn, on the socket and over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from daemon_process import DaemonProcess
from test_http_endpoint import HttpDaemon, start_http_daemon

from claif_cod import CodexClient
from claif_cod.engine.code_mode import catalog_per_thread
from claif_cod.engine.discovery import find_codex, probe
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
ASK = [{"role": "user", "content": '[[call:get_weather {"city": "Paris"}]] [[call:get_time {}]]'}]

# A client that gets the tool calls and dies without closing anything (no close(), no atexit).
CRASHING_CLIENT = textwrap.dedent(
    """
    import json, os, sys
    from claif_cod import CodexClient
    client = CodexClient(daemon="require")
    reply = client.chat.completions.create(model="o4-mini", messages=json.loads(sys.argv[1]),
                                           tools=json.loads(sys.argv[2]))
    print(json.dumps([c.model_dump() for c in reply.choices[0].message.tool_calls]), flush=True)
    os._exit(3)
    """
)


def results_for(calls: list[Any]) -> list[Any]:
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    outputs = [{"role": "tool", "tool_call_id": c["id"], "content": f"{c['function']['name']} ok"} for c in calls]
    return [*ASK, message, *outputs]


def test_a_crashed_client_retries_and_another_connection_answers(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_CLIENT, json.dumps(ASK), json.dumps(TOOLS)],
        capture_output=True,
        text=True,
        env=daemon.env,
        cwd=workdir,
        timeout=60,
    )
    assert crashed.returncode == 3, crashed.stderr
    calls = json.loads(crashed.stdout)
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert daemon.status().turns_in_flight == 1  # the daemon keeps the suspended turn

    with CodexClient(daemon="require") as retry:  # the retried request gets the same calls back
        again = retry.chat.completions.create(model="o4-mini", messages=ASK, tools=TOOLS)
    assert [c.model_dump() for c in again.choices[0].message.tool_calls or []] == calls
    assert len(codex_model_server.requests) == 1

    with CodexClient(daemon="require") as other:  # a third connection brings the results
        reply = other.chat.completions.create(model="o4-mini", messages=results_for(calls), tools=TOOLS)
    assert (
        reply.choices[0].message.content
        == "Tool get_weather returned: get_weather ok\nTool get_time returned: get_time ok"
    )
    follow_up = codex_model_server.requests[-1]
    assert follow_up.body["prompt_cache_key"] == codex_model_server.requests[0].body["prompt_cache_key"]
    assert daemon.status().turns_in_flight == 0


@pytest.fixture
def http(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[HttpDaemon]:
    process = start_http_daemon(daemon_env, tmp_path)
    yield HttpDaemon(process, workdir)
    process.stop()


def test_tool_round_trip_over_http_streamed(http: HttpDaemon, codex_model_server: ModelServer) -> None:
    client = http.client()
    stream = client.chat.completions.create(model="o4-mini", messages=ASK, tools=TOOLS, stream=True)
    chunks = list(stream)
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.function and d.function.name) for d in deltas] == [(0, "get_weather"), (1, "get_time")]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    calls = [
        {"id": d.id, "type": "function", "function": {"name": d.function.name, "arguments": d.function.arguments}}
        for d in deltas
        if d.function is not None
    ]
    reply = client.chat.completions.create(model="o4-mini", messages=results_for(calls), tools=TOOLS)
    assert (
        reply.choices[0].message.content
        == "Tool get_weather returned: get_weather ok\nTool get_time returned: get_time ok"
    )
    assert len(codex_model_server.requests) == 2
    http.wait_idle()


def test_shutdown_does_not_wait_for_a_suspended_turn_and_the_results_work_after_a_restart(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="require") as client:
        message = client.chat.completions.create(model="o4-mini", messages=ASK, tools=TOOLS).choices[0].message
    assert daemon.status().turns_in_flight == 1
    assert daemon.stop() == 0  # within DaemonProcess.stop's 30 s, though the drain deadline is 60 s
    assert "daemon.drain_timeout" not in daemon.log.read_text()

    daemon.start()
    calls = [c.model_dump() for c in message.tool_calls or []]
    with CodexClient(daemon="require") as client:
        reply = client.chat.completions.create(model="o4-mini", messages=results_for(calls), tools=TOOLS)
    assert reply.choices[0].message.content == (
        "Tool get_weather returned: get_weather ok\nTool get_time returned: get_time ok"
    )
    replayed = codex_model_server.requests[-1]
    assert [c.call_id for c in replayed.function_calls()] == [c["id"] for c in calls]  # injected, not flattened


def test_caller_tools_on_a_code_mode_model_through_the_daemon(
    daemon_env: dict[str, str], codex_home: Path, tmp_path: Path, workdir: Path, codex_model_server: ModelServer,
    codex_binary: Path,
) -> None:  # fmt: skip
    """As in-process (tests/integration/test_code_mode_tools.py): plain functions on 0.169-0.171, else a 400."""
    catalog_file = codex_home / "model_catalog.json"
    catalog = json.loads(catalog_file.read_text())
    for model in catalog["models"]:
        model["tool_mode"] = "code_mode_only"
    catalog_file.write_text(json.dumps(catalog))
    process = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]), state_dir=tmp_path / "state", log=tmp_path / "codd.log",
        env=daemon_env,
    )  # fmt: skip
    process.start()
    try:
        # timeout: a hang fails the test instead of stalling the run; never reached when green.
        with CodexClient(daemon="require", model="o4-mini", working_dir=str(workdir), timeout=60) as client:
            if not catalog_per_thread(probe(find_codex(str(codex_binary))).version):
                with pytest.raises(openai.BadRequestError, match="runs model 'o4-mini' in code mode"):
                    client.chat.completions.create(model="o4-mini", messages=ASK, tools=TOOLS)
                assert codex_model_server.requests == []
                return
            reply = client.chat.completions.create(model="o4-mini", messages=ASK, tools=TOOLS)
    finally:
        process.stop()
    assert reply.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in reply.choices[0].message.tool_calls or []] == ["get_weather", "get_time"]
    assert "exec" not in codex_model_server.requests[0].tool_names()


def test_tool_parameters_codex_cannot_honour_are_reported_through_the_socket(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    """As in-process (tests/integration/test_tools.py): the daemon client reports them without
    parsing the history itself."""
    with CodexClient(daemon="require") as client:
        chat = client.chat.completions.with_raw_response.create(
            model="o4-mini",
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS,
            tool_choice="required",
            parallel_tool_calls=False,
        )
        responses = client.responses.with_raw_response.create(
            model="o4-mini",
            input=[{"type": "reasoning", "id": "rs_1", "summary": []}, {"role": "user", "content": "hi"}],
            tools=[{"type": "function", "name": "get_time", "parameters": {"type": "object"}, "strict": True}],
            tool_choice="required",
        )
    assert chat.headers["x-claif-cod-ignored-params"] == "parallel_tool_calls,tool_choice"
    assert responses.headers["x-claif-cod-ignored-params"] == "input.reasoning,tool_choice,tools.function.strict"
