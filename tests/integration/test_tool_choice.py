"""What the model receives for ``tool_choice``, ``parallel_tool_calls`` and ``function.strict``.

Codex decides these fields of the model request itself; claif_cod can only report what it cannot
pass on (docs/parameters.md).  These tests pin what Codex sends, on whichever binary runs them
(``CLAIF_COD_TEST_CODEX``), so the documentation fails loudly when a Codex changes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from claif_cod import CodexClient
from claif_cod.engine.code_mode import catalog_per_thread
from claif_cod.engine.discovery import find_codex, probe
from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "reported"),
    [
        ("auto", None, "tools.function.strict"),
        ("required", None, "tool_choice,tools.function.strict"),
        ({"type": "function", "function": {"name": "get_weather"}}, None, "tool_choice,tools.function.strict"),
        ("auto", False, "parallel_tool_calls,tools.function.strict"),
    ],
)
def test_codex_asks_the_model_for_auto_parallel_non_strict_calls_whatever_was_requested(
    client: CodexClient, codex_model_server: ModelServer, tool_choice: Any, parallel: bool | None, reported: str
) -> None:
    extra: dict[str, Any] = {} if parallel is None else {"parallel_tool_calls": parallel}
    raw = client.chat.completions.with_raw_response.create(
        model="o4-mini", messages=HI, tools=[WEATHER], tool_choice=tool_choice, **extra
    )
    assert raw.headers["x-claif-cod-ignored-params"] == reported
    body = codex_model_server.requests[0].body
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    offered = codex_model_server.requests[0].tool("get_weather")
    assert offered is not None and offered["strict"] is False


def test_strict_mode_refuses_what_codex_cannot_honour(client: CodexClient, codex_model_server: ModelServer) -> None:
    for extra in ({"tool_choice": "required"}, {"parallel_tool_calls": False}):
        with pytest.raises(openai.BadRequestError, match="strict mode: Codex cannot honour"):
            client.chat.completions.create(
                model="o4-mini",
                messages=HI,
                tools=[{**WEATHER, "function": {**WEATHER["function"], "strict": False}}],
                extra_body={"strict": True},
                **extra,
            )
    assert codex_model_server.requests == []


def test_models_on_the_lite_request_format_get_parallel_tool_calls_false(
    tmp_path: Path, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch, codex_binary: Path
) -> None:
    """Most models of Codex's own catalog have ``use_responses_lite``: Codex then sends
    ``parallel_tool_calls: false`` and moves the tools into an ``additional_tools`` input item, unless
    the thread gets a catalog copy without it (Codex 0.169 to 0.171, every thread with caller tools)."""
    home = write_codex_home(tmp_path / "lite-home", codex_model_server.url)
    catalog = json.loads((home / "model_catalog.json").read_text())
    for model in catalog["models"]:
        model["use_responses_lite"] = True
    (home / "model_catalog.json").write_text(json.dumps(catalog))
    monkeypatch.setenv("CODEX_HOME", str(home))
    with CodexClient(daemon="off", model="o4-mini") as client:
        client.chat.completions.create(model="o4-mini", messages=HI, tools=[WEATHER])
    body = codex_model_server.requests[0].body
    if catalog_per_thread(probe(find_codex(str(codex_binary))).version):
        assert (body["tool_choice"], body["parallel_tool_calls"], "tools" in body) == ("auto", True, True)
        assert "get_weather" in codex_model_server.requests[0].tool_names()
        return
    assert (body["tool_choice"], body["parallel_tool_calls"], "tools" in body) == ("auto", False, False)
    extra_tools = [item for item in body["input"] if item.get("type") == "additional_tools"]
    names = [tool["name"] for item in extra_tools for space in item["tools"] for tool in space.get("tools", [])]
    assert "get_weather" in names
