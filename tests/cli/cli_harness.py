"""Running ``python -m claif_cod.cli`` as a user would: with pipes, or on a pseudo-terminal."""

from __future__ import annotations

import contextlib
import os
import platform
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from waiting import wait_until

CLI = [sys.executable, "-m", "claif_cod.cli"]

# Run on the pty as a session leader that owns it as its controlling terminal, as a login shell
# would, so that Ctrl-C typed on the pty reaches the CLI as SIGINT.
_CONTROLLING_TTY = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'claif_cod.cli', *sys.argv[1:]])\n"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")
_SELECT_SYSCALLS = {"x86_64": {"23", "270"}, "aarch64": {"72"}}.get(platform.machine(), set())
"""``select``/``pselect6``: where Python's readline waits for a key."""


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment (CODEX_HOME, socket...) plus a private state dir and a plain terminal."""
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "dumb",
        "INPUTRC": "/dev/null",
        "PYTHONFAULTHANDLER": "1",
    }
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


class PtyProcess:
    """The CLI on a pseudo-terminal: ``expect`` what it shows, ``send`` what a user types."""

    def __init__(self, *args: str, env: dict[str, str], cwd: Path, stdout_piped: bool = False) -> None:
        """``stdout_piped``: stdout is a pipe (``| jq``), stdin and stderr the terminal."""
        self.master, slave = pty.openpty()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CONTROLLING_TTY, *args],
                stdin=slave,
                stdout=subprocess.PIPE if stdout_piped else slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        self._output = ""
        self._seen = 0
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if not ready:
                    if self.proc.poll() is not None and not select.select([self.master], [], [], 0.2)[0]:
                        return
                    continue
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the other side of the pty is closed
                return
            if not data:
                return
            with self._lock:
                self._output += _ANSI.sub("", data.decode(errors="replace")).replace("\r", "")
                self._lock.notify_all()

    @property
    def output(self) -> str:
        with self._lock:
            return self._output

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait for ``pattern`` (a regex) in the output after the previous match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._lock:
            while True:
                match = regex.search(self._output, self._seen)
                if match is not None:
                    self._seen = match.end()
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(min(remaining, 0.2))
        self._dump_stacks()
        raise AssertionError(f"{pattern!r} not shown within {timeout} s; output:\n{self.output}")

    def _dump_stacks(self) -> None:
        """Let a stuck CLI show where it is (PYTHONFAULTHANDLER prints every thread on SIGABRT)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self._reader.join(2)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait_until_waiting_for_a_key(self) -> None:
        """Until the CLI's main thread blocks in readline's ``select()`` again.

        Python's readline checks for signals only when that ``select()`` is interrupted: a Ctrl-C that
        lands while it still handles the previous key (its echo already shown) is only acted on at the
        next key. No person types that fast; a test does, so it waits for the observable state first.
        """
        if not _SELECT_SYSCALLS:  # an architecture whose numbers are not listed: no way to look
            return
        path = Path(f"/proc/{self.proc.pid}/syscall")
        wait_until(lambda: path.read_text().split(" ", 1)[0] in _SELECT_SYSCALLS, "the CLI to wait for a key")

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)
