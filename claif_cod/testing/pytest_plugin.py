"""Pytest fixtures for testing against the offline model (auto-loaded via the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claif_cod.testing.codex_home import write_codex_home
from claif_cod.testing.model_server import ModelServer


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``codex`` marker so projects using the kit need no extra ini entry."""
    config.addinivalue_line("markers", "codex: drives the real Codex binary against the offline test model")


@pytest.fixture
def codex_model_server() -> Iterator[ModelServer]:
    """A running scripted model server, stopped (stalled requests included) after the test."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def codex_home(tmp_path: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``CODEX_HOME`` aimed at ``codex_model_server``, exported for the duration of the test."""
    home = write_codex_home(tmp_path / "codex_home", codex_model_server.url)
    monkeypatch.setenv("CODEX_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def codex_binary() -> Path:
    """The Codex executable bundled by ``openai-codex-cli-bin``."""
    codex_cli_bin = pytest.importorskip("codex_cli_bin", reason="openai-codex-cli-bin is not installed")
    return Path(codex_cli_bin.bundled_codex_path())
