"""Fixtures for the ``claif-cod`` command-line tests: its environment, and a real daemon when needed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
from cli_harness import cli_env
from daemon_process import DaemonProcess


@pytest.fixture
def env(codex_home: Path, tmp_path: Path) -> dict[str, str]:
    """What the CLI runs with: the test's CODEX_HOME and (nonexistent) daemon socket, a private state dir."""
    return cli_env(tmp_path)


@pytest.fixture
def cli_daemon(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """A claif-codd on a private socket; yields the CLI environment that reaches it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    socket = run_dir / "codd.sock"
    daemon_env = {**env, "CLAIF_COD_SOCKET": str(socket)}
    process = DaemonProcess(
        socket=socket, state_dir=tmp_path / "daemon-state", log=tmp_path / "codd.log", env=daemon_env
    )
    process.start()
    try:
        yield daemon_env
    finally:
        process.stop()
