"""Opt-in daemon auto-start (``CLAIF_COD_AUTOSTART=1``): exactly one daemon however many clients race.

A lock file beside the socket serialises starters: the first starts ``claif-codd serve`` and
waits until it accepts; the others, once they get the lock, find it answering.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from claif_cod.transport.socket_path import ensure_directory, listening

ENV_AUTOSTART = "CLAIF_COD_AUTOSTART"
START_TIMEOUT_S = 20.0
IDLE_TIMEOUT_S = 900


def autostart_enabled() -> bool:
    return os.environ.get(ENV_AUTOSTART, "") not in ("", "0", "false", "no")


def answers(path: Path) -> bool:
    """Whether a daemon accepts on ``path``; any failure to tell counts as no."""
    try:
        return listening(path)
    except OSError:
        return False


class DaemonStartFailed(Exception):
    """The daemon this client started exited, or did not answer in time; the message names its log."""


def ensure_daemon(path: Path) -> None:
    """Make sure a daemon answers on ``path``, starting one if needed (blocking).  Raises
    :class:`DaemonStartFailed`, or what preparing the socket's directory raises (``OSError``,
    ``UnsafeSocketDirectory``)."""
    if answers(path):
        return
    ensure_directory(path.parent)
    with open(path.parent / "autostart.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if answers(path):
            return
        log_path = path.parent / "codd.log"
        with open(log_path, "ab") as log_file:
            daemon = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "claif_codd",
                    "serve",
                    "--socket",
                    str(path),
                    "--idle-timeout",
                    str(IDLE_TIMEOUT_S),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if answers(path):
                return
            if daemon.poll() is not None:  # (reaped)
                raise DaemonStartFailed(f"claif-codd exited at start (status {daemon.returncode}); see {log_path}")
            time.sleep(0.02)
        raise DaemonStartFailed(f"claif-codd did not start within {START_TIMEOUT_S:g} s; see {log_path}")
