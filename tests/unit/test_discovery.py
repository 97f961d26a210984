"""Finding the Codex binary (search order, npm's Node wrapper) and learning what it accepts."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import pytest

import claif_cod.engine.binaries as binaries
import claif_cod.engine.discovery as discovery
from claif_cod.engine.config import CodexConfig, ProcessKey
from claif_cod.engine.discovery import ENV_CODEX_PATH, CodexBinary, find_codex, native_binary, probe
from claif_cod.engine.engine import Engine
from claif_cod.engine.errors import CodexNotFound, CodexStartFailed, InvalidRequest

NATIVE = b"\x00fake native codex\n"  # executable, and not a script: no "#!"


def executable(path: Path, content: bytes = NATIVE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def real(path: Path | str) -> str:
    return os.path.realpath(path)


@pytest.fixture(autouse=True)
def _search_unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the search itself: the suite's own choice of Codex is not named."""
    monkeypatch.delenv(ENV_CODEX_PATH, raising=False)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A codex in each of the four places; PATH and the bundled package point at ours only."""
    found = {
        "explicit": executable(tmp_path / "explicit" / "codex"),
        "env": executable(tmp_path / "env" / "codex"),
        "path": executable(tmp_path / "bin" / "codex"),
        "bundled": executable(tmp_path / "bundled" / "codex"),
    }
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv(ENV_CODEX_PATH, str(found["env"]))
    monkeypatch.setattr(discovery, "_bundled_path", lambda: str(found["bundled"]))
    return found


# --- search order -----------------------------------------------------------------------------


def test_explicit_codex_path_comes_first(places: dict[str, Path]) -> None:
    assert find_codex(str(places["explicit"])) == real(places["explicit"])


def test_then_the_environment_variable(places: dict[str, Path]) -> None:
    assert find_codex() == real(places["env"])


def test_then_path(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_CODEX_PATH)
    assert find_codex() == real(places["path"])


def test_then_the_bundled_binary(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_CODEX_PATH)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_codex() == real(places["bundled"])


def test_a_broken_environment_variable_falls_through_to_path(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_CODEX_PATH, str(tmp_path / "nope" / "codex"))
    assert find_codex() == real(places["path"])


def test_a_non_executable_file_on_path_is_skipped(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_CODEX_PATH)
    places["path"].chmod(0o644)
    assert find_codex() == real(places["bundled"])


def test_nothing_anywhere_lists_every_place_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing" / "codex"
    monkeypatch.setenv(ENV_CODEX_PATH, str(missing))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(discovery, "_bundled_path", lambda: None)
    with pytest.raises(CodexNotFound) as info:
        find_codex()
    searched = info.value.searched
    assert len(searched) == 3
    assert searched[0].startswith(f"${ENV_CODEX_PATH}={missing} (")
    assert searched[1] == "`codex` on PATH (not found)"
    assert searched[2] == "bundled openai-codex-cli-bin (not found)"
    message = str(info.value)
    assert message.startswith("Codex CLI binary not found. Searched: ")
    assert all(place in message for place in searched)


def test_explicit_path_that_does_not_exist_fails_even_when_path_has_codex(
    places: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "codex"
    with pytest.raises(CodexNotFound) as info:
        find_codex(str(missing))
    assert len(info.value.searched) == 1
    assert info.value.searched[0].startswith(f"codex_path={missing} (")
    assert str(missing) in str(info.value)


def test_explicit_path_that_is_not_executable_fails(places: dict[str, Path]) -> None:
    places["explicit"].chmod(0o644)
    with pytest.raises(CodexNotFound) as info:
        find_codex(str(places["explicit"]))
    assert info.value.searched == [f"codex_path={places['explicit']} (not executable)"]


def test_explicit_directory_fails(places: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CodexNotFound):
        find_codex(str(tmp_path))


def test_a_path_that_does_not_exist_is_reported_as_not_found(places: dict[str, Path], tmp_path: Path) -> None:
    # "not executable" would send the user chasing file permissions on a file that is not there.
    missing = tmp_path / "nowhere" / "codex"
    with pytest.raises(CodexNotFound) as info:
        find_codex(str(missing))
    assert info.value.searched == [f"codex_path={missing} (not found)"]


def test_the_real_bundled_binary_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    bundled = discovery._bundled_path()
    if bundled is None:
        pytest.skip("openai-codex-cli-bin ships no binary for this platform")
    assert find_codex() == real(bundled)


# --- npm's Node wrapper -------------------------------------------------------------------


def npm_tree(root: Path, native_at: str | None) -> dict[str, Path]:
    """node_modules as `npm install @openai/codex` lays it out."""
    modules = root / "node_modules"
    package = modules / "@openai" / "codex"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "@openai/codex", "bin": {"codex": "bin/codex.js"}}))
    script = executable(package / "bin" / "codex.js", b"#!/usr/bin/env node\nimport('../dist/cli.js');\n")
    link = modules / ".bin" / "codex"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "@openai" / "codex" / "bin" / "codex.js")
    tree = {"modules": modules, "package": package, "script": script, "link": link}
    if native_at is not None:
        tree["native"] = executable(root / native_at)
    return tree


HOISTED = "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"


def test_npm_link_resolves_to_the_native_binary(tmp_path: Path) -> None:
    tree = npm_tree(tmp_path, HOISTED)
    assert native_binary(str(tree["link"])) == real(tree["native"])
    assert native_binary(str(tree["script"])) == real(tree["native"])


def test_npm_layout_found_through_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = npm_tree(tmp_path, HOISTED)
    monkeypatch.setenv("PATH", str(tree["modules"] / ".bin"))
    monkeypatch.setattr(discovery, "_bundled_path", lambda: None)
    assert find_codex() == real(tree["native"])


@pytest.mark.parametrize(
    "native_at",
    [
        "node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex",
        "node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/bin/codex",
        "node_modules/@openai/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
        "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/codex/codex",
    ],
)
def test_other_npm_layouts(tmp_path: Path, native_at: str) -> None:
    tree = npm_tree(tmp_path, native_at)
    assert native_binary(str(tree["link"])) == real(tree["native"])


def test_without_a_native_binary_the_wrapper_is_kept(tmp_path: Path) -> None:
    tree = npm_tree(tmp_path, None)
    assert native_binary(str(tree["link"])) == real(tree["script"])


def test_a_native_candidate_that_is_a_script_or_not_executable_is_skipped(tmp_path: Path) -> None:
    tree = npm_tree(tmp_path, None)
    executable(tmp_path / HOISTED, b"#!/bin/sh\nexec node x\n")
    assert native_binary(str(tree["link"])) == real(tree["script"])
    (tmp_path / HOISTED).write_bytes(NATIVE)
    (tmp_path / HOISTED).chmod(0o644)
    assert native_binary(str(tree["link"])) == real(tree["script"])


def test_a_script_outside_any_package_is_kept(tmp_path: Path) -> None:
    script = executable(tmp_path / "codex", b"#!/bin/sh\necho hi\n")
    assert native_binary(str(script)) == real(script)


def test_a_native_binary_is_returned_resolved(tmp_path: Path) -> None:
    target = executable(tmp_path / "real" / "codex")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert native_binary(str(link)) == real(target)


# --- approval and sandbox values ----------------------------------------------------------


def binary(approval: set[str] | None = None, sandbox: set[str] | None = None) -> CodexBinary:
    return CodexBinary(
        path="/x/codex",
        version="0.163.0",
        approval_values=frozenset(approval if approval is not None else {"untrusted", "on-request", "never"}),
        sandbox_values=frozenset(
            sandbox if sandbox is not None else {"read-only", "workspace-write", "danger-full-access"}
        ),
    )


def test_accepted_values_pass_without_warning() -> None:
    codex = binary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in ("untrusted", "on-request", "never", None):
            assert codex.approval_policy(value) == value
        for value in ("read-only", "workspace-write", "danger-full-access", None):
            assert codex.check_sandbox(value) == value


def test_retired_on_failure_maps_to_on_request_and_every_request_hears_so() -> None:
    codex = binary()
    assert codex.approval_policy("on-failure") == "on-request"
    config = CodexConfig(working_dir="/w", approval_policy="on-failure")
    key = ProcessKey.resolve(config, codex, default_home=None)
    assert key.approval == "on-request"
    assert key.warnings == (
        "approval_policy='on-failure' is not accepted by codex 0.163.0; using 'on-request' instead",
    )
    # the warning is not part of what selects the process
    assert key == ProcessKey.resolve(
        CodexConfig(working_dir="/w", approval_policy="on-request"), codex, default_home=None
    )
    assert ProcessKey.resolve(CodexConfig(working_dir="/w"), codex, default_home=None).warnings == ()


async def test_the_engine_tells_each_request_what_it_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def probed(codex_path: str | None) -> CodexBinary:
        return binary()

    monkeypatch.setattr(binaries, "find_and_probe", probed)
    engine = Engine()
    heard: list[str] = []
    config = CodexConfig(working_dir=str(tmp_path), approval_policy="on-failure")
    first = await engine.resolve(config, heard.append)
    second = await engine.resolve(config, heard.append)  # the key remembered: still said
    assert first is second
    assert len(heard) == 2 and "'on-failure'" in heard[0]
    await engine.resolve(CodexConfig(working_dir=str(tmp_path), approval_policy="never"), heard.append)
    assert len(heard) == 2


async def test_a_binary_changed_on_disk_is_probed_again_off_the_requests_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon outlives a Codex upgrade: after RECHECK_S, requests are judged by the new binary."""
    on_disk = [binary(sandbox={"read-only"})]

    async def probed(codex_path: str | None) -> CodexBinary:
        return on_disk[0]

    monkeypatch.setattr(binaries, "find_and_probe", probed)
    monkeypatch.setattr(binaries, "RECHECK_S", 0.0)
    resolved = binaries.Binaries(None)
    config = CodexConfig(working_dir=str(tmp_path), sandbox_mode="danger-full-access")
    with pytest.raises(InvalidRequest, match=r"unknown to codex 0\.163\.0"):
        await resolved.resolve(config)
    on_disk[0] = dataclasses.replace(binary(), version="0.171.0")
    with pytest.raises(InvalidRequest):  # judged by what is known, while the new probe runs beside it
        await resolved.resolve(config)
    assert resolved._checking is not None
    await resolved._checking  # the check that request started in the background
    assert resolved.known("/x/codex") == on_disk[0]
    assert (await resolved.resolve(config)).sandbox == "danger-full-access"
    await resolved.close()


def test_mapping_takes_the_nearest_value_this_binary_accepts() -> None:
    assert binary({"untrusted", "never"}).approval_policy("on-failure") == "untrusted"
    assert binary({"untrusted", "never"}).approval_policy("on-request") == "untrusted"
    assert binary({"never"}).approval_policy("untrusted") == "never"


def test_unknown_approval_value_lists_the_accepted_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"approval_policy='sometimes' is unknown to codex 0\.163\.0") as info:
        binary().approval_policy("sometimes")
    assert str(info.value).endswith("use one of never, on-request, untrusted")


def test_never_has_no_fallback() -> None:
    with pytest.raises(InvalidRequest, match="use one of untrusted"):
        binary({"untrusted"}).approval_policy("never")


def test_unknown_sandbox_value_lists_the_accepted_ones() -> None:
    with pytest.raises(InvalidRequest, match="sandbox_mode") as info:
        binary().check_sandbox("yolo")
    assert str(info.value) == (
        "sandbox_mode='yolo' is unknown to codex 0.163.0; use one of danger-full-access, read-only, workspace-write"
    )


# --- probe --------------------------------------------------------------------------------


def test_probe_the_real_bundled_binary() -> None:
    codex_cli_bin = pytest.importorskip("codex_cli_bin")
    path = str(codex_cli_bin.bundled_codex_path())
    codex = probe(path)
    assert codex.path == path
    assert codex.version.count(".") == 2
    assert codex.version[0].isdigit()
    assert {"untrusted", "on-request", "never"} <= codex.approval_values
    assert "on-failure" not in codex.approval_values
    assert codex.sandbox_values == {"read-only", "workspace-write", "danger-full-access"}
    assert probe(path) is codex  # cached per file identity


FAKE_SCHEMA: dict[str, Any] = {
    "definitions": {
        "AskForApproval": {
            "oneOf": [
                {"type": "string", "enum": ["untrusted"]},
                {"anyOf": [{"type": "string", "enum": ["never"]}]},
                {"type": "object", "properties": {"granular": {"type": "object"}}},
            ]
        },
        "SandboxMode": {"type": "string", "enum": ["read-only", "workspace-write"]},
    }
}


def fake_codex(tmp_path: Path, *, version: str = "codex-cli 9.8.7", schema: Any = FAKE_SCHEMA) -> Path:
    """A shell-script codex: `--version`, and `app-server generate-json-schema --out DIR`."""
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(schema if isinstance(schema, str) else json.dumps(schema))
    script = f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi
if [ "$1 $2 $3" = "app-server generate-json-schema --out" ]; then
  mkdir -p "$4/v2" && cp "{schema_file}" "$4/v2/ThreadStartParams.json"; exit 0
fi
echo "unexpected arguments: $*" >&2
exit 2
"""
    return executable(tmp_path / "fake" / "codex", script.encode())


def test_probe_adapts_to_a_binary_without_on_request(tmp_path: Path) -> None:
    path = str(fake_codex(tmp_path))
    codex = probe(path)
    assert codex.version == "9.8.7"
    assert codex.approval_values == {"untrusted", "never"}
    assert codex.sandbox_values == {"read-only", "workspace-write"}
    key = ProcessKey.resolve(CodexConfig(working_dir="/w", approval_policy="on-request"), codex, default_home=None)
    assert key.approval == "untrusted"
    assert key.warnings == ("approval_policy='on-request' is not accepted by codex 9.8.7; using 'untrusted' instead",)
    with pytest.raises(InvalidRequest, match="use one of read-only, workspace-write"):
        codex.check_sandbox("danger-full-access")


def test_probe_falls_back_to_defaults_when_the_schema_cannot_be_read(tmp_path: Path) -> None:
    codex = probe(str(fake_codex(tmp_path, schema="not json")))
    assert codex.approval_values == {"untrusted", "on-request", "never"}
    assert codex.sandbox_values == {"read-only", "workspace-write", "danger-full-access"}


def test_probe_falls_back_per_enum(tmp_path: Path) -> None:
    codex = probe(str(fake_codex(tmp_path, schema={"definitions": {"SandboxMode": {"enum": ["read-only"]}}})))
    assert codex.approval_values == {"untrusted", "on-request", "never"}
    assert codex.sandbox_values == {"read-only"}


def test_probe_of_a_binary_that_will_not_run(tmp_path: Path) -> None:
    broken = executable(tmp_path / "broken" / "codex", b"#!/bin/sh\nexit 3\n")
    with pytest.raises(CodexStartFailed, match="--version"):
        probe(str(broken))


def test_probe_is_redone_when_the_file_changes(tmp_path: Path) -> None:
    path = fake_codex(tmp_path)
    first = probe(str(path))
    assert probe(str(path)) is first
    fake_codex(tmp_path, version="codex-cli 9.8.70")
    assert probe(str(path)).version == "9.8.70"
