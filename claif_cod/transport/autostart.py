"""Opt-in daemon auto-start (``CLAIF_COD_AUTOSTART=1``): exactly one daemon however many clients race.

A lock file beside the socket serialises starters: the first starts ``claif-codd serve`` and
waits until it accepts; the others, once they get the lock, find it answering. The daemon outlives
the client that started it and serves every later one, so it does not keep that client's Codex
settings (:data:`PER_CLIENT`): each client sends its own, and one without them gets Codex's defaults.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from claif_cod.engine.discovery import ENV_CODEX_PATH
from claif_cod.transport.socket_path import ensure_directory, listening

ENV_AUTOSTART = "CLAIF_COD_AUTOSTART"
START_TIMEOUT_S = 20.0
IDLE_TIMEOUT_S = 900
PER_CLIENT = ("CODEX_HOME", "CODEX_API_KEY", ENV_CODEX_PATH)
"""What a daemon client sends with every request that has them (``daemon_backend.codex_options``);
in an autostarted daemon's environment they would be the defaults of every client without them."""


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
    with os.fdopen(_private(path.parent / "autostart.lock", os.O_RDWR), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if answers(path):
            return
        env = {name: value for name, value in os.environ.items() if name not in PER_CLIENT}
        daemon, log_path = launch(path, ["--idle-timeout", str(IDLE_TIMEOUT_S)], env)
        wait_until_answering(path, daemon, log_path)
        let_go(daemon)


def launch(path: Path, options: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    """``claif-codd serve --socket PATH OPTIONS...`` in a session of its own (with ``env``, else ours),
    its JSON log appended to ``codd.log`` beside the socket (0600, in the socket's directory, checked
    first, as the daemon checks it: nothing is written to a directory others could read or swap)."""
    ensure_directory(path.parent)
    log_path = path.parent / "codd.log"
    log = _private(log_path, os.O_WRONLY | os.O_APPEND)
    try:
        args = [sys.executable, "-m", "claif_codd", "serve", "--socket", str(path), "--log-format", "json", *options]
        daemon = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env
        )
    finally:
        os.close(log)
    return daemon, log_path


def wait_until_answering(path: Path, daemon: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the daemon :func:`launch` started accepts on ``path``; raises :class:`DaemonStartFailed`
    once it exited, or after ``START_TIMEOUT_S``. A daemon its starter is told did not start (too
    slow, or the wait cut short: Ctrl-C) is stopped: it is not left to start later, unasked."""
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if answers(path):
                return
            if daemon.poll() is not None:  # (reaped)
                reason = _start_failure(log_path)
                said = f": {reason}; its log: {log_path}" if reason else f"; see {log_path}"
                raise DaemonStartFailed(f"claif-codd exited at start (status {daemon.returncode}){said}")
            time.sleep(0.02)
    except BaseException:
        _stop(daemon)
        raise
    _stop(daemon)
    raise DaemonStartFailed(f"claif-codd did not start within {START_TIMEOUT_S:g} s (stopped it); see {log_path}")


def let_go(daemon: subprocess.Popen[bytes]) -> None:
    """The daemon, answering, outlives the process that started it: its exit is waited for in a thread
    of its own.  Its ``Popen`` was dropped still running, which ``python -X dev`` reports
    (``ResourceWarning: subprocess N is still running``), and a daemon that stopped while its starter
    ran on (its idle timeout, ``claif-codd stop``) stayed a zombie of the starter's until it exited."""
    threading.Thread(target=daemon.wait, name=f"claif-codd-{daemon.pid}-exit", daemon=True).start()


STOP_GRACE_S = 10.0
"""How long a daemon given up on at start has to stop on SIGTERM before it is killed."""


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is not None:
        return
    daemon.terminate()
    try:
        daemon.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


def _start_failure(log_path: Path) -> str | None:
    """Why the daemon said it could not start, when its log's last line says it (not, say, a traceback)."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 16384))
            last = log.read().splitlines()[-1]
        said = json.loads(last)
    except (OSError, IndexError, ValueError):
        return None
    if not isinstance(said, dict) or said.get("event") != "daemon.start_failed":
        return None
    error = said.get("error")
    return error if isinstance(error, str) else None


def _private(path: Path, flags: int) -> int:
    """A file of ours opened with ``flags``: created 0600, never through a symlink; one an older
    version left with the umask's mode is closed to others too."""
    fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd
