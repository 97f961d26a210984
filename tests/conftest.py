"""Shared test setup: each test gets its own model server, CODEX_HOME and working directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private working directory (Codex's cwd), also made the process cwd for the test."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture(autouse=True)
def _no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a daemon the developer may have running, unless they start their own."""
    monkeypatch.setenv("CLAIF_COD_SOCKET", "/nonexistent/claif-cod-test.sock")
    monkeypatch.delenv("CLAIF_COD_DAEMON", raising=False)
    monkeypatch.delenv("CLAIF_COD_CODEX_PATH", raising=False)
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
