"""A private ``claif-codd serve`` for a benchmark: started on a socket in a temporary directory,
stopped like systemd would (SIGTERM, then wait), its Codex children reaped, and its memory read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_common import elapsed_ms

from claif_cod.testing.daemon import start_daemon, stop_daemon


@dataclass
class Daemon:
    """``claif-codd serve`` on a private socket; started and stopped like systemd would."""

    socket: Path
    state_dir: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)
    """More ``serve`` options (``--thread-idle-timeout``...)."""
    children: set[int] = field(default_factory=set)
    stop_report: str = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start and wait until the socket accepts; returns milliseconds to readiness."""
        start = time.perf_counter()
        self.proc = start_daemon(
            self.socket, self.state_dir, self.log, self.env, ["--http", "127.0.0.1:0", *self.extra_args]
        )
        return elapsed_ms(start)

    def status(self) -> dict[str, Any]:
        """``claif-codd status --json``, as a user would run it."""
        cli = Path(sys.executable).with_name("claif-codd")
        command = [str(cli)] if cli.exists() else [sys.executable, "-m", "claif_codd"]
        done = subprocess.run(
            [*command, "status", "--json", "--socket", str(self.socket)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"claif-codd status failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
        info: dict[str, Any] = json.loads(done.stdout)
        self.children.update(p["pid"] for p in info["processes"])
        return info

    def stop(self) -> None:
        """SIGTERM, wait; SIGKILL if it hangs. Then kill any Codex child it left behind."""
        if self.proc is None:
            return
        self.children.update(child_pids(self.proc.pid))
        start = time.perf_counter()
        stop_daemon(self.proc)
        took = elapsed_ms(start)
        left = sorted(pid for pid in self.children if alive(pid))
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # each app-server leads its own process group
        self.stop_report = (
            f"claif-codd stopped with SIGTERM: exit code {self.proc.returncode} after {took:.0f} ms; "
            f"Codex children left running: {len(left)} of {len(self.children)}"
            + (f" (killed: {', '.join(map(str, left))})" if left else "")
        )

    def show_log_on_error(self, exc_type: type[BaseException] | None, _exc: object, _tb: object) -> bool:
        """On a failure (not Ctrl-C), print the daemon's last log lines before the temp dir goes."""
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            print(f"claif-codd log ({self.log}), last lines:\n{self.log_tail()}", file=sys.stderr)
        return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def child_pids(parent: int) -> set[int]:
    """Direct children of ``parent``, from /proc."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class Memory:
    label: str
    daemon_rss: int
    codex: list[dict[str, Any]]
    sessions: int

    @property
    def codex_rss(self) -> int:
        return sum(p.get("rss_bytes") or 0 for p in self.codex)

    @classmethod
    def read(cls, label: str, daemon: Daemon) -> Memory:
        info = daemon.status()
        codex = [{k: p.get(k) for k in ("pid", "working_dir", "rss_bytes", "threads")} for p in info["processes"]]
        return cls(label=label, daemon_rss=rss_bytes(daemon.pid) or 0, codex=codex, sessions=info["sessions"])


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM unwinds like Ctrl-C does, so the daemon and every Codex process still get stopped."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def started_in(root: Path, cleanup: contextlib.ExitStack) -> Daemon:
    """A daemon on a private socket under ``root`` that this process's clients reach (no autostart),
    stopped, its log shown on an error, as ``cleanup`` unwinds."""
    run_dir = root / "run"
    run_dir.mkdir(mode=0o700)
    os.environ.pop("CLAIF_COD_AUTOSTART", None)
    os.environ["CLAIF_COD_SOCKET"] = str(run_dir / "codd.sock")
    daemon = Daemon(socket=run_dir / "codd.sock", state_dir=root / "state", log=root / "codd.log", env={**os.environ})
    daemon.start()
    cleanup.callback(daemon.stop)
    cleanup.push(daemon.show_log_on_error)
    return daemon
