"""Tools-only mode (``builtin_tools=False``) through the real Codex: the model server's record of the
tools each model request offered must be exactly the caller's, on every Codex it is supported on.

Run against another binary with ``CLAIF_COD_TEST_CODEX=/path/to/codex`` (docs/testing.md); the
recipes per Codex version are in claif_cod/engine/tools_only.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_messages import user
from waiting import wait_until

from claif_cod import CodexClient
from claif_cod.engine import idle
from claif_cod.engine.discovery import find_codex, probe
from claif_cod.engine.engine import Engine
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools_only import recipe
from claif_cod.testing import ModelServer, write_codex_home
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
CALLERS = ["get_weather", "get_time"]
ONLY = {"builtin_tools": False}


def how(codex_binary: Path) -> str | None:
    """The recipe this Codex gets, or None when tools-only mode is refused on it."""
    try:
        return recipe(probe(find_codex(str(codex_binary))).version)
    except InvalidRequest:
        return None


def engine_of(client: CodexClient) -> Engine:
    assert client.backend is not None and isinstance(client.backend.local, InProcessBackend)
    return client.backend.local.engine


def code_mode_home(path: Path, server: ModelServer) -> Path:
    """A CODEX_HOME whose models are like most of Codex's own: code mode, the lite request format, extra tools."""
    home = write_codex_home(path, server.url)
    catalog_file = home / "model_catalog.json"
    catalog = json.loads(catalog_file.read_text())
    for model in catalog["models"]:
        model["tool_mode"] = "code_mode_only"
        model["use_responses_lite"] = True
        model["experimental_supported_tools"] = ["list_dir"]
    catalog_file.write_text(json.dumps(catalog))
    return home


def round_trip(client: CodexClient) -> None:
    """A call to a caller tool and its answer: two model requests of one turn."""
    first = [user("[[call:get_time {}]]")]
    reply = client.chat.completions.create(model="o4-mini", messages=first, tools=TOOLS, extra_body=ONLY)
    assert reply.choices[0].finish_reason == "tool_calls"
    call = reply.choices[0].message.tool_calls[0]
    answer = [*first, reply.choices[0].message.model_dump(exclude_none=True)]
    answer.append({"role": "tool", "tool_call_id": call.id, "content": "noon"})
    done = client.chat.completions.create(model="o4-mini", messages=answer, tools=TOOLS, extra_body=ONLY)
    assert done.choices[0].message.content == "Tool get_time returned: noon"


def test_the_model_is_offered_exactly_the_callers_tools(
    client: CodexClient, codex_model_server: ModelServer, codex_binary: Path
) -> None:
    if how(codex_binary) is None:
        pytest.skip("tools-only mode is refused by this Codex (test_refused_on_a_codex_it_cannot_be_done_on)")
    round_trip(client)
    assert [r.tool_names() for r in codex_model_server.requests] == [CALLERS, CALLERS]
    plain = client.chat.completions.create(model="o4-mini", messages=[user("hi")], tools=TOOLS)
    assert plain.choices[0].message.content == "Echo: hi"
    offered = codex_model_server.requests[-1].tool_names()
    assert {"exec_command", "apply_patch", "view_image"} <= set(offered)  # Codex's own tools otherwise stay


def test_models_like_codexs_own_get_the_callers_tools_as_functions(
    tmp_path: Path, workdir: Path, codex_model_server: ModelServer, codex_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codex's own catalog puts most models in code mode (every tool behind its JavaScript ``exec``) and on
    the lite request format (tools in an ``additional_tools`` input item)."""
    monkeypatch.setenv("CODEX_HOME", str(code_mode_home(tmp_path / "code-mode-home", codex_model_server)))
    with CodexClient(daemon="off", model="o4-mini") as client:
        # No caller tools: with them, the model would leave code mode (test_code_mode_tools.py).
        plain = client.chat.completions.create(model="o4-mini", messages=[user("hi")])
        assert plain.choices[0].message.content == "Echo: hi"
        lite = codex_model_server.requests[0].body
        assert "tools" not in lite and "additional_tools" in json.dumps(lite["input"])  # the lite format
        assert '"name": "exec"' in json.dumps(lite["input"])  # in code mode
        recipe_here = how(codex_binary)
        if recipe_here != "catalog":
            why = "code mode" if recipe_here == "environments" else "not supported by codex"
            with pytest.raises(openai.BadRequestError, match=why) as refused:
                client.chat.completions.create(
                    model="o4-mini", messages=[user("[[call:get_time {}]]")], tools=TOOLS, extra_body=ONLY
                )
            assert refused.value.body["param"] == "builtin_tools"  # type: ignore[index]
            assert len(codex_model_server.requests) == 1  # refused before any thread started
            return
        round_trip(client)
    assert [r.tool_names() for r in codex_model_server.requests[1:]] == [CALLERS, CALLERS]


def test_refused_on_a_codex_it_cannot_be_done_on(
    client: CodexClient, codex_model_server: ModelServer, codex_binary: Path
) -> None:
    if how(codex_binary) is not None:
        pytest.skip("this Codex supports tools-only mode (see the tests above)")
    version = probe(find_codex(str(codex_binary))).version
    with pytest.raises(openai.BadRequestError, match=f"builtin_tools=false is not supported by codex {version}"):
        client.chat.completions.create(
            model="o4-mini", messages=[user("[[call:get_time {}]]")], tools=TOOLS, extra_body=ONLY
        )
    assert codex_model_server.requests == []  # refused before any thread or turn started
    plain = client.chat.completions.create(model="o4-mini", messages=[user("hi")], tools=TOOLS)
    assert plain.choices[0].message.content == "Echo: hi"


RESPONSES_TOOLS: list[Any] = [{"type": "function", **TOOLS[1]["function"]}]


def continue_from(client: CodexClient, previous: str, text: str) -> Any:
    return client.responses.create(
        model="o4-mini", input=text, previous_response_id=previous, tools=RESPONSES_TOOLS, extra_body=ONLY
    )


def test_a_branch_is_reseeded_tools_only(
    client: CodexClient, codex_model_server: ModelServer, codex_binary: Path
) -> None:
    """Branching an older response of a thread with caller tools starts a new thread seeded with the branch
    (never a fork: Codex would not report a fork's calls), tools-only like the first."""
    if how(codex_binary) is None:
        pytest.skip("tools-only mode is refused by this Codex")
    first = client.responses.create(model="o4-mini", input="hi", tools=RESPONSES_TOOLS, extra_body=ONLY)
    continue_from(client, first.id, "one")
    continue_from(client, first.id, "two")  # the branch: "hi", its answer, "two" on a new thread
    assert [r.user_texts()[-1] for r in codex_model_server.requests] == ["hi", "one", "two"]
    assert [r.tool_names() for r in codex_model_server.requests] == [["get_time"]] * 3


def test_a_thread_unloaded_when_idle_is_reseeded_tools_only(
    codex_home: Path,
    workdir: Path,
    codex_model_server: ModelServer,
    codex_binary: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored response's thread with caller tools, unloaded when idle, is not resumed (Codex would not report
    its calls) but re-seeded from the stored conversation on a new thread, tools-only like the first."""
    if how(codex_binary) is None:
        pytest.skip("tools-only mode is refused by this Codex")
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 0.3)
    with CodexClient(daemon="off", model="o4-mini") as client:
        first = client.responses.create(model="o4-mini", input="hi", tools=RESPONSES_TOOLS, extra_body=ONLY)
        engine = engine_of(client)
        wait_until(lambda: not engine.threads.loaded(), "the idle thread to be unloaded")
        again = continue_from(client, first.id, "again")
    assert again.output_text == "[turn 2] Echo: again"  # the model saw the conversation so far
    assert [r.tool_names() for r in codex_model_server.requests] == [["get_time"]] * 2


def unload_every_thread(client: CodexClient) -> None:
    """Unload every thread as an idle sweep does, keeping no handle of it (as when no request holds it)."""
    engine = engine_of(client)
    for handle in engine.threads.loaded():
        handle.last_used -= 7200
    assert client._core.loop.run(engine.threads.idle.sweep()) >= 1


@pytest.mark.parametrize("started_with", ["codex tools", "builtin_tools=false"])
def test_a_continuation_asking_for_other_builtin_tools_gets_them_after_an_idle_unload(
    started_with: str,
    codex_home: Path,
    workdir: Path,
    codex_model_server: ModelServer,
    codex_binary: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored response continued with builtin_tools other than its thread's: while the thread is loaded the
    chain goes to a new thread with the tools asked for; once the thread was unloaded (idle, a restart) it was
    resumed with its own, and builtin_tools=false was ignored: the model was offered Codex's shell and the rest
    (the other way round, on Codex 0.163, a BadRequestError about builtin_tools=false that was not asked for)."""
    if how(codex_binary) is None:
        pytest.skip("tools-only mode is refused by this Codex")
    monkeypatch.setattr(idle, "DEFAULT_THREAD_IDLE_TIMEOUT_S", 3600.0)  # only the test's own sweep unloads
    first_only, then_only = (ONLY, {}) if started_with == "builtin_tools=false" else ({}, ONLY)
    with CodexClient(daemon="off", model="o4-mini", timeout=20) as client:
        first = client.responses.create(input="one", extra_body=first_only)
        unload_every_thread(client)
        again = client.responses.create(input="two", previous_response_id=first.id, extra_body=then_only)
    assert again.output_text == "[turn 2] Echo: two"  # the model saw the conversation so far
    offered = codex_model_server.requests[-1].tool_names()
    if then_only:
        assert offered == []
    else:
        assert {"exec_command", "apply_patch"} <= set(offered)
