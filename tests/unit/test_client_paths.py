"""A client's paths are resolved once, when it is made: relative to the current directory, and a
leading ``~`` to the user's home, whichever path it is (docs/python-api.md, "Client Options")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from claif_cod import AsyncCodexClient, CodexClient
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


NOT_UTF8 = os.fsdecode(b"lat\xe9n")
"""A directory name in Latin-1, as Python holds it: its byte that is not UTF-8 as a lone surrogate."""


@pytest.mark.parametrize("cls", [CodexClient, AsyncCodexClient])
@pytest.mark.parametrize("name", ["working_dir", "codex_home"])
def test_a_path_that_is_not_utf8_is_refused_when_the_client_is_made(tmp_path: Path, cls: Any, name: str) -> None:
    """Codex takes directories as JSON strings: such a path failed every request instead, in-process as
    a 500 "internal error" and through the daemon as a bare UnicodeEncodeError."""
    (tmp_path / NOT_UTF8).mkdir()
    with pytest.raises(ValueError, match=f"^{name} .*lat.*n' is not valid UTF-8: Codex takes only UTF-8 paths$"):
        cls(daemon="off", **{name: str(tmp_path / NOT_UTF8)})


def test_a_current_directory_that_is_not_utf8_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / NOT_UTF8).mkdir()
    monkeypatch.chdir(tmp_path / NOT_UTF8)
    with pytest.raises(ValueError, match=r"^the current directory \(the default working_dir\) .* is not valid UTF-8"):
        CodexClient(daemon="off")
    assert config(working_dir=str(tmp_path)).working_dir == str(tmp_path)
