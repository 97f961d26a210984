"""Helpers every latency benchmark here shares (imported from the script's own directory)."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import claif_cod


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def codex_version(codex: str) -> str:
    out = subprocess.run([codex, "--version"], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "claif_cod": claif_cod.__version__,
    }


def at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("need at least 2 turns for a p90")
    return value


def private_home(root: Path) -> Path:
    """Give this process and every Codex it starts an empty ``HOME`` under ``root``.

    Codex runs the user's login shell (``bash -lc``) to learn its environment; a machine's own
    ``~/.bashrc`` (a ``pyenv rehash``, say) then runs on every spawn and thread start, which is
    noise for the benchmark, not a cost of claif_cod or Codex. The tests isolate ``HOME`` the same way.
    """
    home = root / "user-home"
    home.mkdir(mode=0o700, exist_ok=True)
    os.environ["HOME"] = str(home)
    return home
