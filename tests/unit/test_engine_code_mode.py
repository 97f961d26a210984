"""Caller tools and code mode (engine/code_mode.py): the catalog copy and the refusal, with a fake ``codex``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_engine_tools_only import CODE_MODE, PLAIN, fake_codex, key_for

from claif_cod.engine.code_mode import CodeMode, catalog_per_thread
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools_only import Catalog, ToolsOnly


def test_the_functions_copy_drops_only_code_mode_and_the_lite_format() -> None:
    coder = {**CODE_MODE, "use_responses_lite": True, "apply_patch_tool_type": "freeform"}
    copy = json.loads(Catalog.parse(json.dumps({"models": [PLAIN, coder], "etag": "e"})).functions())
    assert copy["etag"] == "e"
    assert copy["models"][0] == PLAIN
    assert copy["models"][1] == {k: v for k, v in coder.items() if k not in ("tool_mode", "use_responses_lite")}
    assert copy["models"][1]["apply_patch_tool_type"] == "freeform"  # Codex's own tools stay


@pytest.mark.parametrize(("version", "expected"), [("0.163.0", False), ("0.168.0", False), ("0.169.0", True),
                                                   ("0.171.2", True), ("0.172.0", False), ("dev", False)])  # fmt: skip
def test_a_catalog_per_thread_only_where_it_was_checked(version: str, expected: bool) -> None:
    assert catalog_per_thread(version) is expected


async def test_code_mode_models_are_refused_where_the_catalog_is_per_process(tmp_path: Path) -> None:
    codex, _ = fake_codex(tmp_path, {"models": [PLAIN, CODE_MODE]})
    guard = CodeMode(ToolsOnly())
    key = key_for(codex, tmp_path)
    assert await guard.thread_config("0.163.0", key, {}) is None
    await guard.check_model("0.163.0", key, {}, "plain")
    with pytest.raises(InvalidRequest, match=r"codex 0\.163\.0 runs model 'coder' in code mode") as refused:
        await guard.check_model("0.163.0", key, {}, "coder")
    assert refused.value.param == "model"
    await guard.check_model("0.171.0", key, {}, "coder")  # given a catalog per thread instead
    config = await guard.thread_config("0.171.0", key, {})
    assert config is not None
    assert "tool_mode" not in await asyncio.to_thread(Path(config["model_catalog_json"]).read_text)


async def test_an_unreadable_catalog(tmp_path: Path) -> None:
    """Where a catalog copy is needed it is a clear refusal; where only the check needs it, the turn goes on."""
    codex, _ = fake_codex(tmp_path, "no catalog here", exit_code=1)
    guard = CodeMode(ToolsOnly())
    key = key_for(codex, tmp_path)
    await guard.check_model("0.150.0", key, {}, "coder")
    with pytest.raises(InvalidRequest, match="caller tools need Codex's model catalog") as refused:
        await guard.thread_config("0.171.0", key, {})
    assert refused.value.param == "tools"
