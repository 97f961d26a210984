"""The probe of a Codex binary is remembered on disk: a fresh process runs nothing and writes nothing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from claif_cod.engine import discovery, probe_cache

SCHEMA = {
    "definitions": {
        "AskForApproval": {"type": "string", "enum": ["untrusted", "never"]},
        "SandboxMode": {"type": "string", "enum": ["read-only"]},
    }
}


def fake_codex(root: Path, *, schema: str = json.dumps(SCHEMA)) -> Path:
    """A shell-script codex that logs each run to ``runs.log`` next to it."""
    (root / "schema.json").write_text(schema)
    script = root / "codex"
    script.write_text(f"""#!/bin/sh
echo "$*" >> "{root}/runs.log"
if [ "$1" = "--version" ]; then echo "codex-cli 1.2.3"; exit 0; fi
if [ "$1 $2 $3" = "app-server generate-json-schema --out" ]; then
  mkdir -p "$4/v2" && cp "{root}/schema.json" "$4/v2/ThreadStartParams.json"; exit 0
fi
exit 2
""")
    script.chmod(0o755)
    return script


def runs(codex: Path) -> list[str]:
    log = codex.parent / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture
def temp_folder(private_tempdir: Path) -> Iterator[Path]:
    """The test's private temporary folder (see conftest), where anything written is seen."""
    discovery.forget_probes()
    yield private_tempdir
    discovery.forget_probes()


def probe_in_a_fresh_process(codex: Path) -> dict[str, object]:
    code = (
        "import json, sys; from claif_cod.engine.discovery import probe; b = probe(sys.argv[1]); "
        "print(json.dumps({'version': b.version, 'approval': sorted(b.approval_values), "
        "'sandbox': sorted(b.sandbox_values)}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(codex)], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_fresh_process_reuses_the_probe_and_runs_nothing(tmp_path: Path, cache_home: Path) -> None:
    codex = fake_codex(tmp_path)
    first = probe_in_a_fresh_process(codex)
    assert first == {"version": "1.2.3", "approval": ["never", "untrusted"], "sandbox": ["read-only"]}
    assert len(runs(codex)) == 2  # --version and the schema
    assert probe_in_a_fresh_process(codex) == first
    assert len(runs(codex)) == 2


def test_probing_leaves_no_file_in_the_temporary_folder(tmp_path: Path, cache_home: Path, temp_folder: Path) -> None:
    codex = fake_codex(tmp_path)
    assert discovery.probe(str(codex)).version == "1.2.3"
    assert list(temp_folder.iterdir()) == []
    directory = probe_cache.cache_dir()
    # Not even briefly: a process killed mid-probe would leave the folder behind.
    generated = runs(codex)[1].rsplit(" ", 1)[-1]
    assert Path(generated).parent == directory
    [entry] = list(directory.iterdir())  # the schema folder was generated here and removed
    assert entry.suffix == ".json"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(directory.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_a_replaced_binary_is_probed_again(tmp_path: Path, cache_home: Path, temp_folder: Path) -> None:
    codex = fake_codex(tmp_path)
    discovery.probe(str(codex))
    discovery.forget_probes()
    codex.write_text(codex.read_text().replace("1.2.3", "1.2.4"))
    assert discovery.probe(str(codex)).version == "1.2.4"
    assert len(runs(codex)) == 4


def test_a_corrupt_cache_file_is_ignored_and_rewritten(tmp_path: Path, cache_home: Path, temp_folder: Path) -> None:
    codex = fake_codex(tmp_path)
    discovery.probe(str(codex))
    [entry] = list(probe_cache.cache_dir().iterdir())
    entry.write_text('{"identity": ')
    discovery.forget_probes()
    assert discovery.probe(str(codex)).sandbox_values == {"read-only"}
    assert len(runs(codex)) == 4
    assert json.loads(entry.read_text())["version"] == "1.2.3"


def test_an_unusable_cache_directory_only_costs_a_probe(tmp_path: Path, cache_home: Path, temp_folder: Path) -> None:
    cache_home.write_text("a file where the cache directory should be")
    codex = fake_codex(tmp_path)
    assert discovery.probe(str(codex)).approval_values == {"untrusted", "never"}
    assert list(temp_folder.iterdir()) == []  # the fallback schema folder is removed again
    discovery.forget_probes()
    discovery.probe(str(codex))
    assert len(runs(codex)) == 4


def test_a_directory_others_can_read_is_not_used(tmp_path: Path, cache_home: Path, temp_folder: Path) -> None:
    directory = probe_cache.cache_dir()
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    codex = fake_codex(tmp_path)
    discovery.probe(str(codex))
    assert list(directory.iterdir()) == []


def test_an_unreadable_schema_is_not_remembered(tmp_path: Path, cache_home: Path, temp_folder: Path) -> None:
    codex = fake_codex(tmp_path, schema="not json")
    assert discovery.probe(str(codex)).approval_values == {"untrusted", "on-request", "never"}
    assert not probe_cache.cache_dir().exists() or not list(probe_cache.cache_dir().glob("*.json"))
    discovery.forget_probes()
    discovery.probe(str(codex))
    assert len(runs(codex)) == 4


def test_a_schema_folder_left_by_a_killed_process_is_removed(
    tmp_path: Path, cache_home: Path, temp_folder: Path
) -> None:
    directory = probe_cache.cache_dir()
    directory.mkdir(parents=True, mode=0o700)
    directory.parent.chmod(0o700)
    left = directory / "schema-left-behind"
    (left / "v2").mkdir(parents=True)
    old = 1_000_000_000
    os.utime(left, (old, old))
    discovery.probe(str(fake_codex(tmp_path)))
    assert not left.exists()
