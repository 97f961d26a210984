"""engine/tools_only.py without Codex: which recipe a version gets, the catalog copy, and refusals.

A stand-in ``codex`` script prints the catalog; tests/integration/test_tools_only.py checks the
recipes against the real binaries and the tools the model server was offered.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from claif_cod.engine.config import ProcessKey
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools_only import BASE_CONFIG, Catalog, ToolsOnly, recipe

PLAIN = {"slug": "plain", "base_instructions": "be plain", "apply_patch_tool_type": "freeform", "shell_type": "x"}
CODE_MODE = {
    **PLAIN,
    "slug": "coder",
    "tool_mode": "code_mode_only",
    "use_responses_lite": True,
    "experimental_supported_tools": ["clock"],
}


@pytest.mark.parametrize(("version", "expected"), [("0.150.0", "environments"), ("0.163.0", "environments")])
def test_old_codex_gets_the_environments_recipe(version: str, expected: str) -> None:
    assert recipe(version) == expected


@pytest.mark.parametrize("version", ["0.169.1", "0.170.0", "0.171.0"])
def test_new_codex_gets_the_catalog_recipe(version: str) -> None:
    assert recipe(version) == "catalog"


@pytest.mark.parametrize("version", ["0.164.0", "0.166.0", "0.168.9", "0.172.0", "1.0.0", "unknown"])
def test_other_versions_are_refused(version: str) -> None:
    with pytest.raises(InvalidRequest, match=f"not supported by codex {version}") as caught:
        recipe(version)
    assert caught.value.param == "builtin_tools"


def test_the_catalog_copy_drops_only_what_brings_codex_tools() -> None:
    catalog = Catalog.parse(json.dumps({"models": [PLAIN, CODE_MODE]}))
    assert catalog.code_mode_models() == ["coder"]
    copy = json.loads(catalog.tools_only())
    assert copy == {
        "models": [
            {"slug": "plain", "base_instructions": "be plain", "shell_type": "x", "experimental_supported_tools": []},
            {"slug": "coder", "base_instructions": "be plain", "shell_type": "x", "experimental_supported_tools": []},
        ]
    }


def fake_codex(tmp_path: Path, catalog: Any, *, exit_code: int = 0) -> tuple[str, Path]:
    """A ``codex`` that prints ``catalog`` for ``debug models`` and counts its runs."""
    runs = tmp_path / "runs"
    script = tmp_path / "codex"
    payload = catalog if isinstance(catalog, str) else json.dumps(catalog)
    script.write_text(
        f"#!/bin/sh\necho run >> {runs}\n[ \"$1 $2\" = 'debug models' ] || exit 9\n"
        f"cat <<'EOF'\n{payload}\nEOF\nexit {exit_code}\n"
    )
    script.chmod(0o700)
    return str(script), runs


def key_for(codex: str, tmp_path: Path) -> ProcessKey:
    return ProcessKey(codex, None, None, str(tmp_path), None, None)


async def test_catalog_recipe_writes_a_private_copy_and_reads_codex_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    codex, runs = fake_codex(tmp_path, {"models": [CODE_MODE]})
    tools_only = ToolsOnly()
    fields = await tools_only.thread_fields("0.171.0", key_for(codex, tmp_path), os.environ)
    again = await tools_only.thread_fields("0.171.0", key_for(codex, tmp_path), os.environ)
    assert fields == again and runs.read_text().count("run") == 1
    config = fields["config"]
    assert fields["environments"] == []
    assert config["features"] == {"multi_agent": False, "goals": False, "shell_tool": False, "view_image": False}
    assert config["web_search"] == "disabled" and config["tools"] == BASE_CONFIG["tools"]
    path = config["model_catalog_json"]
    assert (
        stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    )
    copied = {"slug": "coder", "base_instructions": "be plain", "shell_type": "x", "experimental_supported_tools": []}
    with open(path, encoding="utf-8") as f:  # noqa: ASYNC230 - a test reading a small file
        assert json.load(f) == {"models": [copied]}


async def test_a_binary_upgraded_in_place_has_its_own_catalog_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade keeps the binary's path, so the process key: a process of the new version gets the
    catalog the new binary prints, not the one the old printed (within its 5 minutes), and a warm
    process of the old version keeps its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    codex, runs = fake_codex(tmp_path, {"models": [PLAIN]})
    tools_only, key = ToolsOnly(), key_for(codex, tmp_path)

    def models(fields: dict[str, Any]) -> list[str]:
        with open(fields["config"]["model_catalog_json"], encoding="utf-8") as f:
            return [m["slug"] for m in json.load(f)["models"]]

    assert models(await tools_only.thread_fields("0.169.0", key, os.environ)) == ["plain"]
    fake_codex(tmp_path, {"models": [PLAIN, {**PLAIN, "slug": "newer"}]})  # upgraded: the same path
    assert models(await tools_only.thread_fields("0.171.0", key, os.environ)) == ["plain", "newer"]
    assert models(await tools_only.thread_fields("0.169.0", key, os.environ)) == ["plain"]
    assert runs.read_text().count("run") == 2


async def test_environments_recipe_on_a_catalog_without_code_mode(tmp_path: Path) -> None:
    codex, _ = fake_codex(tmp_path, {"models": [PLAIN]})
    fields = await ToolsOnly().thread_fields("0.163.0", key_for(codex, tmp_path), os.environ)
    assert fields == {"environments": [], "config": BASE_CONFIG}


async def test_environments_recipe_refuses_a_catalog_with_code_mode(tmp_path: Path) -> None:
    codex, _ = fake_codex(tmp_path, {"models": [PLAIN, CODE_MODE]})
    with pytest.raises(InvalidRequest, match=r"codex 0.163.0 with this model catalog.*code mode \(coder\)") as caught:
        await ToolsOnly().thread_fields("0.163.0", key_for(codex, tmp_path), os.environ)
    assert caught.value.param == "builtin_tools"


@pytest.mark.parametrize(("output", "exit_code", "why"), [("{}", 0, "no 'models' list"), ("oops", 3, "exit 3|oops")])
async def test_an_unreadable_catalog_is_a_clear_refusal(tmp_path: Path, output: str, exit_code: int, why: str) -> None:
    codex, _ = fake_codex(tmp_path, output, exit_code=exit_code)
    with pytest.raises(InvalidRequest, match=f"debug models` failed: .*({why})") as caught:
        await ToolsOnly().thread_fields("0.171.0", key_for(codex, tmp_path), os.environ)
    assert caught.value.param == "builtin_tools"


async def test_an_unsupported_version_is_refused_before_codex_is_run(tmp_path: Path) -> None:
    codex, runs = fake_codex(tmp_path, {"models": []})
    with pytest.raises(InvalidRequest, match=r"not supported by codex 0\.166\.0"):
        await ToolsOnly().thread_fields("0.166.0", key_for(codex, tmp_path), os.environ)
    assert not runs.exists()


async def test_a_fork_or_resume_gets_the_same_config_or_a_refusal(tmp_path: Path) -> None:
    codex, _ = fake_codex(tmp_path, {"models": [PLAIN]})
    tools_only, key = ToolsOnly(), key_for(codex, tmp_path)
    started = await tools_only.thread_fields("0.171.0", key, os.environ)
    assert await tools_only.reload_config("0.171.0", key, os.environ) == started["config"]
    with pytest.raises(InvalidRequest, match="cannot branch or resume") as caught:
        await tools_only.reload_config("0.163.0", key, os.environ)
    assert caught.value.param == "builtin_tools"
