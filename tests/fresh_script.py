"""A script run in a fresh interpreter, as a user runs it: for tests of what a whole program does
(its exit, its stderr, a fork), in-process and through a daemon."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter, as a user runs it, with every warning an error."""
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
