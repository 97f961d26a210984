"""A private ``claif-codd serve`` for tests and benchmarks: on its own socket and state directory,
in a session of its own (so that it and its Codex children can be killed as a group), started and
stopped as systemd would."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from claif_cod.transport.autostart import answers

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0


def start_daemon(
    socket: Path, state_dir: Path, log: Path, env: Mapping[str, str], extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """``claif-codd serve`` with ``extra`` options, once its socket answers; its output is appended to
    ``log``.  One that exits or does not answer in time is killed and reported with its log's end."""
    command = [sys.executable, "-m", "claif_codd", "serve", "--socket", str(socket), "--state-dir", str(state_dir)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*command, *extra],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(socket):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()  # never leave behind a daemon that starts after we gave up
            proc.wait()
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"claif-codd did not start (exit {proc.returncode}):\n{tail}")
        time.sleep(0.01)
    return proc


def stop_daemon(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM and wait (the daemon drains, then stops its Codex children); SIGKILL if it hangs, or if
    the wait is interrupted.  Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except BaseException:  # Ctrl-C while waiting: do not leave it running
            proc.kill()
            proc.wait()
            raise
    return proc.returncode
