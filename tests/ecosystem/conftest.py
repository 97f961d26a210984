"""The ecosystem layer: real agent and LLM libraries, used as their own docs show, on the real Codex CLI.

Starting Codex dominates these tests, so each module shares one offline model server, one
``CODEX_HOME`` and one working directory (and, where it needs one, one ``claif-codd serve --http``);
tests only look at the requests their own calls sent (``Requests.since``). A library that is not
installed skips its module with the extra to install: ``pip install -e '.[ecosystem]'``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ecosystem_support import Requests

from claif_cod.testing import ModelServer, write_codex_home

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
from daemon_process import DaemonProcess  # the daemon layer's harness, reused as is


@pytest.fixture(scope="module")
def eco_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def eco_home(tmp_path_factory: pytest.TempPathFactory, eco_server: ModelServer) -> Path:
    return write_codex_home(tmp_path_factory.mktemp("codex_home"), eco_server.url)


@pytest.fixture(scope="module")
def eco_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture
def model(eco_server: ModelServer, eco_home: Path, eco_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Requests:
    """The shared model, with ``CODEX_HOME`` and the working directory set for this test."""
    monkeypatch.setenv("CODEX_HOME", str(eco_home))
    monkeypatch.chdir(eco_workdir)
    recorder = Requests(eco_server)
    recorder.mark()
    return recorder


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory, eco_home: Path, eco_workdir: Path) -> Iterator[str]:
    """``claif-codd serve --http`` on 127.0.0.1 (private socket, state dir), stopped after the module."""
    base = tmp_path_factory.mktemp("daemon")
    run_dir = base / "run"
    run_dir.mkdir(mode=0o700)
    env = {**os.environ, "CLAIF_COD_SOCKET": str(run_dir / "codd.sock"), "CODEX_HOME": str(eco_home)}
    process = DaemonProcess(socket=run_dir / "codd.sock", state_dir=base / "state", log=base / "codd.log", env=env)
    process.start("--http", "127.0.0.1:0", "--http-working-dir", str(eco_workdir))
    try:
        url = process.status().http
        assert url is not None
        yield url + "/v1"
    finally:
        process.stop()
