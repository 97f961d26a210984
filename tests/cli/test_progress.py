"""Seconds of silence while Codex (or the daemon) starts: a passing note on a terminal, nothing when piped.

Piped output staying clean is checked by ``test_cli.py`` (``stderr == ""`` for a piped query).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import PtyProcess, run_cli

pytestmark = pytest.mark.codex


def test_query_on_a_terminal_says_it_waits_for_codex(env: dict[str, str], workdir: Path) -> None:
    term = PtyProcess("query", "hello there", env=env, cwd=workdir)
    try:
        term.expect("claif-cod: waiting for Codex...")
        term.expect("Echo: hello there")
        assert term.wait() == 0
    finally:
        term.close()


def test_piped_query_prints_no_progress(env: dict[str, str], workdir: Path) -> None:
    result = run_cli("query", "hello there", env=env, cwd=workdir)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: hello there\n", "")


def test_daemon_start_on_a_terminal_says_where_its_log_is(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    socket = run / "codd.sock"
    env = {**os.environ, "CLAIF_COD_SOCKET": str(socket), "XDG_STATE_HOME": str(tmp_path / "state")}
    master, slave = pty.openpty()
    try:
        start = subprocess.run(
            [sys.executable, "-m", "claif_codd", "start", "--socket", str(socket)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            timeout=60,
            check=False,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: nothing more to read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        subprocess.run(
            [sys.executable, "-m", "claif_codd", "stop", "--socket", str(socket)], env=env, timeout=60, check=False
        )
    assert start.returncode == 0
    assert f"claif-codd: starting (its log: {run / 'codd.log'})...".encode() in shown, shown
    piped = subprocess.run(
        [sys.executable, "-m", "claif_codd", "start", "--socket", str(socket)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    subprocess.run([sys.executable, "-m", "claif_codd", "stop", "--socket", str(socket)], env=env, timeout=60)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
