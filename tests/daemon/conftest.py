"""A real claif-codd process per test: private socket, state directory and CODEX_HOME."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess


@pytest.fixture
def daemon_env(codex_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    socket = run_dir / "codd.sock"
    monkeypatch.setenv("CLAIF_COD_SOCKET", str(socket))
    state = tmp_path / "state"  # every daemon a test starts (`start` included) keeps its registry here
    monkeypatch.setenv("CLAIF_COD_STATE_DIR", str(state))
    env = {
        **os.environ,
        "CLAIF_COD_SOCKET": str(socket),
        "CODEX_HOME": str(codex_home),
        "CLAIF_COD_STATE_DIR": str(state),
    }
    return env


@pytest.fixture
def daemon(daemon_env: dict[str, str], tmp_path: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]),
        state_dir=tmp_path / "state",
        log=tmp_path / "codd.log",
        env=daemon_env,
    )
    process.start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


@pytest.fixture
def secure_delete_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SQLite connection opened in this process starts with ``secure_delete`` off, as on an
    SQLite built with upstream's default (Debian's build turns it on): what a registry frees stays
    in the file unless the registry turns it on itself."""
    connect = sqlite3.connect

    def default_off(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", default_off)
