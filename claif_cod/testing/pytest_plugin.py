"""Pytest fixtures for testing against the offline model (auto-loaded via the ``pytest11`` entry point)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from claif_cod.testing.codex_home import write_codex_home
from claif_cod.testing.model_server import ModelServer

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The names claif_cod.transport reads, written out: importing it would cost every pytest run ~0.2 s.
ENV_SOCKET, ENV_DAEMON, ENV_AUTOSTART = "CLAIF_COD_SOCKET", "CLAIF_COD_DAEMON", "CLAIF_COD_AUTOSTART"


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
    """A fresh ``CODEX_HOME`` aimed at ``codex_model_server``, exported for the duration of the test,
    with an environment in which the test's requests reach that server and nothing of the developer's."""
    home = write_codex_home(tmp_path / "codex_home", codex_model_server.url)
    monkeypatch.setenv("CODEX_HOME", str(home))
    _reach_only_the_model_server(monkeypatch, tmp_path, codex_model_server.url)
    return home


def _reach_only_the_model_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    """Codex honours ``HTTP(S)_PROXY``: behind a proxy, its requests for the model server on loopback went
    to the proxy and hung until the client's timeout, so the server's host joins ``NO_PROXY``.  And a
    client in ``auto`` mode used the developer's running claif-codd (systemd starts one on the first
    connection), which would keep the test's prompts in the developer's ``responses.db`` and answer
    with whatever claif_cod version it runs: the socket is one nothing listens on (a test that starts
    its own daemon sets ``CLAIF_COD_SOCKET`` to it), and ``CLAIF_COD_DAEMON`` and ``CLAIF_COD_AUTOSTART``
    are the defaults."""
    hosts = [*LOOPBACK, urlsplit(url).hostname or ""]
    for name in ("NO_PROXY", "no_proxy"):
        current = [entry for entry in os.environ.get(name, "").split(",") if entry.strip()]
        monkeypatch.setenv(name, ",".join(dict.fromkeys([*current, *filter(None, hosts)])))
    monkeypatch.setenv(ENV_SOCKET, str(tmp_path / "no-claif-codd" / "codd.sock"))
    monkeypatch.delenv(ENV_DAEMON, raising=False)
    monkeypatch.delenv(ENV_AUTOSTART, raising=False)


@pytest.fixture(scope="session")
def codex_binary() -> Path:
    """The Codex executable bundled by ``openai-codex-cli-bin``."""
    codex_cli_bin = pytest.importorskip("codex_cli_bin", reason="openai-codex-cli-bin is not installed")
    return Path(codex_cli_bin.bundled_codex_path())
