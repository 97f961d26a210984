"""A script run in a fresh interpreter, as a user runs it: for tests of what a whole program does
(its exit, its stderr, a fork), in-process and through a daemon."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

SLOW_STEP = re.compile(r"^(?:WARNING:asyncio:)?Executing <.*> took (\d+\.\d+) seconds\n", re.MULTILINE)
"""asyncio's debug mode (``-X dev``) reports each loop step that took over 100 ms of wall time. On a
loaded 2-core machine a step the OS set aside does (seen in CI: the first step of a turn's dispatch,
under 10 ms on a quiet machine, took 117): a report of the machine's load, not of the script."""


def run_script(
    script: str, cwd: Path, env: dict[str, str], *, stall: float = math.inf
) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter, as a user runs it, with every warning an error. Reports of
    loop steps shorter than ``stall`` seconds are left out of its stderr (see :data:`SLOW_STEP`);
    every other line stays."""
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    done.stderr = SLOW_STEP.sub(lambda report: "" if float(report[1]) < stall else report[0], done.stderr)
    return done
