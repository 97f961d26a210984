"""Both command lines report failures the same way: ``<program>: error: <message>`` on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_claif_codd_errors_look_like_claif_cods(tmp_path: Path) -> None:
    socket = tmp_path / "none.sock"
    done = subprocess.run(
        [sys.executable, "-m", "claif_codd", "status", "--socket", str(socket)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"claif-codd: error: no claif-codd answers at {socket}"), done.stderr
    assert done.stderr.endswith("; start one with `claif-codd start`\n"), done.stderr
    assert "Error:" not in done.stderr
