"""Which Codex binary a request names to the daemon: what the same client would run in-process.

The daemon has its own working directory and environment, so a relative path is made absolute in
the client, and ``$CLAIF_COD_CODEX_PATH`` is sent only when it names a file it could run: in-process a
missing or non-executable one is skipped (docs/cli.md), while an explicit ``codex_path`` that is
fails every request.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claif_cod import CodexClient
from claif_cod.transport.daemon_backend import codex_options


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLAIF_COD_CODEX_PATH", raising=False)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "codex").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "codex").chmod(0o755)
    return tmp_path


def sent(**client: object) -> str | None:
    with CodexClient(daemon="off", **client) as made:  # type: ignore[arg-type]
        return codex_options(made._core.options).codex_path


def test_a_relative_codex_path_reaches_the_daemon_absolute(in_tmp: Path) -> None:
    assert sent(codex_path="bin/codex") == str(in_tmp / "bin" / "codex")


def test_the_environment_variable_is_sent_absolute_when_its_file_exists(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIF_COD_CODEX_PATH", "bin/codex")
    assert sent() == str(in_tmp / "bin" / "codex")


def test_the_environment_variable_naming_no_file_is_skipped(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIF_COD_CODEX_PATH", str(in_tmp / "gone" / "codex"))
    assert sent() is None  # the daemon looks further, as discovery in-process does
    assert sent(codex_path="bin/codex") == os.path.join(in_tmp, "bin", "codex")  # an explicit path wins


def test_the_environment_variable_naming_a_file_it_cannot_run_is_skipped(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process it is skipped; it was sent, and the daemon failed every request, saying
    ``codex_path=... (not executable)`` of a parameter the caller never passed."""
    (in_tmp / "notes").write_text("not a program\n")
    monkeypatch.setenv("CLAIF_COD_CODEX_PATH", str(in_tmp / "notes"))
    assert sent() is None
