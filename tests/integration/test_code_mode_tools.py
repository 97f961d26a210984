"""Caller tools on a model Codex runs in code mode (most of Codex's own models): offered as plain functions
where Codex takes a catalog per thread (0.169 to 0.171), refused with a 400 elsewhere; never a hang.

In code mode the model reaches caller tools only from JavaScript in Codex's ``exec`` tool; the offline
model then scripts such an ``exec`` call (docs/testing.md), whose tool call claif_cod cannot report.
Run against another binary with ``CLAIF_COD_TEST_CODEX=/path/to/codex`` (docs/testing.md).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_messages import user

from claif_cod import CodexClient
from claif_cod.engine.code_mode import catalog_per_thread
from claif_cod.engine.discovery import find_codex, probe
from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex

TIME: list[Any] = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
PLAIN_MODEL = "gpt-test-large"
"""The one model of the test catalog left out of code mode."""
GUARD_S = 60.0
"""A hang fails the request after this long instead of stalling the run; never reached when green."""


def per_thread(codex_binary: Path) -> bool:
    return catalog_per_thread(probe(find_codex(str(codex_binary))).version)


@pytest.fixture
def client(tmp_path: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[CodexClient]:  # fmt: skip
    """A client on a CODEX_HOME whose models run in code mode, as most of Codex's own do (bar one)."""
    home = write_codex_home(tmp_path / "code-mode-home", codex_model_server.url)
    catalog_file = home / "model_catalog.json"
    catalog = json.loads(catalog_file.read_text())
    for model in catalog["models"]:
        if model["slug"] != PLAIN_MODEL:
            model["tool_mode"] = "code_mode_only"
            model["use_responses_lite"] = True
    catalog_file.write_text(json.dumps(catalog))
    monkeypatch.setenv("CODEX_HOME", str(home))
    with CodexClient(daemon="off", timeout=GUARD_S) as c:
        yield c


def test_the_testing_model_calls_a_tool_from_exec_in_code_mode(codex_model_server: ModelServer) -> None:
    """What a code-mode model does with a call marker (the JavaScript Codex would run), without Codex."""
    body = {
        "model": "m",
        "stream": True,
        "tools": [{"type": "custom", "name": "exec"}],
        "input": [{"type": "message", "role": "user", "content": '[[call:get_weather {"city": "Oslo"}]]'}],
    }
    post = urllib.request.Request(f"{codex_model_server.url}/responses", data=json.dumps(body).encode(), method="POST")
    post.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(post, timeout=GUARD_S) as answer:
        stream = answer.read().decode()
    assert '"type": "custom_tool_call"' in stream and '"name": "exec"' in stream
    assert 'text(JSON.stringify(await tools.get_weather({\\"city\\": \\"Oslo\\"})));' in stream


def test_caller_tools_on_a_code_mode_model(
    client: CodexClient, codex_model_server: ModelServer, codex_binary: Path
) -> None:
    first = [user("[[call:get_time {}]]")]
    if not per_thread(codex_binary):
        with pytest.raises(openai.BadRequestError, match="runs model 'o4-mini' in code mode") as refused:
            client.chat.completions.create(model="o4-mini", messages=first, tools=TIME)
        assert refused.value.body["param"] == "model"  # type: ignore[index]
        assert codex_model_server.requests == []  # refused before any turn started
        return
    reply = client.chat.completions.create(model="o4-mini", messages=first, tools=TIME)
    assert reply.choices[0].finish_reason == "tool_calls"
    [call] = reply.choices[0].message.tool_calls
    assert call.function.name == "get_time"
    history = [*first, reply.choices[0].message.model_dump(exclude_none=True)]
    history.append({"role": "tool", "tool_call_id": call.id, "content": "noon"})
    done = client.chat.completions.create(model="o4-mini", messages=history, tools=TIME)
    assert done.choices[0].message.content == "Tool get_time returned: noon"
    for request in codex_model_server.requests:
        offered = request.tool_names()
        assert "get_time" in offered and "exec" not in offered  # a plain function, out of code mode
        assert "exec_command" in offered  # Codex's own tools stay
        assert "tools" in request.body  # the standard request format, not the lite one


def test_codexs_default_model_in_code_mode(
    client: CodexClient, codex_model_server: ModelServer, codex_binary: Path
) -> None:
    """No model named: Codex picks its configured one (o4-mini, in code mode here)."""
    tools: list[Any] = [{"type": "function", **TIME[0]["function"]}]
    if not per_thread(codex_binary):
        with pytest.raises(openai.BadRequestError, match="runs model 'o4-mini' in code mode"):
            client.responses.create(input="[[call:get_time {}]]", tools=tools)
        assert codex_model_server.requests == []
        return
    response = client.responses.create(input="[[call:get_time {}]]", tools=tools)
    assert [item.type for item in response.output] == ["function_call"]


def test_a_turn_may_not_switch_a_tools_thread_to_a_code_mode_model(
    client: CodexClient, codex_model_server: ModelServer, codex_binary: Path
) -> None:
    first = [user("hi")]
    reply = client.chat.completions.create(model=PLAIN_MODEL, messages=first, tools=TIME)
    assert reply.choices[0].message.content == "Echo: hi"
    history = [*first, {"role": "assistant", "content": "Echo: hi"}, user("[[call:get_time {}]]")]
    if not per_thread(codex_binary):
        with pytest.raises(openai.BadRequestError, match="runs model 'o4' in code mode"):
            client.chat.completions.create(model="o4", messages=history, tools=TIME)
        assert len(codex_model_server.requests) == 1
        return
    again = client.chat.completions.create(model="o4", messages=history, tools=TIME)
    assert again.choices[0].finish_reason == "tool_calls"
