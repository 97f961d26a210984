"""Run one API guide example in a fresh interpreter, as a user's script would, and watch it exit.

The example never closes its clients (most don't): the interpreter's own exit must print
nothing and leave no process behind. :func:`run_fresh` runs this file as a reaper, which makes
itself the child subreaper (Linux), runs the example in a fresh interpreter
(``python guide_exit.py --example GUIDE ID``), and once that interpreter has exited writes a
report of every process it left running (its orphans are reparented to the reaper), which it
then kills.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PR_SET_CHILD_SUBREAPER = 36
PYDANTIC_DICT = r"The `dict` method is deprecated"
"""As ``api_guide.GUIDE_WARNINGS``: the guide's examples call pydantic's deprecated ``.dict()``, kept verbatim."""


@dataclass
class Exit:
    returncode: int
    stdout: str
    stderr: str
    left_running: list[str]
    left_in_tmp: list[str] = field(default_factory=list)
    """Entries of ours (``claif-cod-*``) left in the example's temporary folder once it (and its daemon) ended."""


def ours_in(folder: Path) -> list[str]:
    """The ``claif-cod-*`` entries in a temporary folder (a probe's schema folder, say)."""
    return sorted(entry.name for entry in folder.iterdir() if entry.name.startswith("claif-cod-"))


def can_reap() -> bool:
    return sys.platform == "linux" and Path("/proc/self/stat").exists()


def run_fresh(guide: Path, example_id: str, *, cwd: Path, env: dict[str, str], report: Path) -> Exit:
    """The example in a fresh interpreter: its exit code, output, and what it left running."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "guide_exit.py"), str(report), str(guide), example_id],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"the reaper failed:\n{proc.stderr}"
    result = json.loads(report.read_text())
    return Exit(result["returncode"], proc.stdout, proc.stderr, result["left_running"])


# --- inside the fresh interpreter ---------------------------------------------------------------


def run_example(guide: Path, example_id: str) -> None:
    """Execute the example as ``test_api_guide`` does (same namespace and context), then just return."""
    from api_guide import CONTEXT, free_names, parse_examples

    warnings.filterwarnings("ignore", message=PYDANTIC_DICT, category=DeprecationWarning)
    [example] = [e for e in parse_examples(guide.read_text(encoding="utf-8"), guide) if e.id == example_id]
    namespace = {"__name__": "api_guide_example", "__builtins__": builtins}
    for name in sorted(free_names(example.code)):
        namespace[name] = CONTEXT[name]()
    exec(example.compile(), namespace)


# --- the reaper ---------------------------------------------------------------------------------


def describe(pid: int) -> str:
    try:
        return f"{pid}: " + (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return f"{pid}: (gone)"


def orphans() -> list[int]:
    """Live processes reparented to this reaper (zombies are reaped, not counted)."""
    me = os.getpid()
    alive = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = (Path("/proc") / entry.name / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            if fields[0] == "Z":
                os.waitpid(int(entry.name), 0)
            else:
                alive.append(int(entry.name))
    return alive


def reap(report: Path, guide: Path, example_id: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    proc = subprocess.run([sys.executable, __file__, "--example", str(guide), example_id], check=False)
    left = orphans()
    report.write_text(json.dumps({"returncode": proc.returncode, "left_running": [describe(p) for p in left]}))
    for pid in left:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    if sys.argv[1] == "--example":
        sys.path.insert(0, str(HERE))
        run_example(Path(sys.argv[2]), sys.argv[3])
    else:
        reap(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
