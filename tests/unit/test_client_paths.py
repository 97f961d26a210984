"""A client's paths are resolved once, when it is made: relative to the current directory, and a
leading ``~`` to the user's home, whichever path it is (docs/python-api.md, "Client Options")."""

from __future__ import annotations

from pathlib import Path

import pytest

from claif_cod import CodexClient
from claif_cod.engine.config import CodexConfig


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return Path.home()  # the test's own (see conftest)


def config(**given: str) -> CodexConfig:
    with CodexClient(daemon="off", **given) as client:  # type: ignore[arg-type]
        return client._core.options.config


@pytest.mark.parametrize("name", ["working_dir", "codex_home", "codex_path"])
def test_a_leading_tilde_is_the_users_home(home: Path, name: str) -> None:
    assert getattr(config(**{name: "~/proj"}), name) == str(home / "proj")


@pytest.mark.parametrize("name", ["working_dir", "codex_home", "codex_path"])
def test_a_relative_path_is_taken_from_the_current_directory(home: Path, tmp_path: Path, name: str) -> None:
    assert getattr(config(**{name: "proj"}), name) == str(tmp_path / "proj")


def test_a_current_directory_removed_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "worktree"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(FileNotFoundError, match="current directory no longer exists: give the client a working_dir"):
        CodexClient(daemon="off")
    assert config(working_dir=str(tmp_path)).working_dir == str(tmp_path)
