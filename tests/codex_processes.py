"""The Codex processes a test started, found in ``/proc`` by the ``CODEX_HOME`` they run with (so
also once their parent is gone): what a test checks is left behind."""

from __future__ import annotations

import os
from pathlib import Path


def codex_processes(codex_home: Path) -> dict[int, tuple[int, str]]:
    """Live (non-zombie) ``codex`` processes started with our ``CODEX_HOME``: pid -> (ppid, command line)."""
    found: dict[int, tuple[int, str]] = {}
    marker = f"CODEX_HOME={codex_home}".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().rstrip(b"\0").split(b"\0")
            if os.path.basename(argv[0]) != b"codex":
                continue
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat.rsplit(b")", 1)[1].split()[:2]
        if state != b"Z":
            found[int(entry.name)] = (int(ppid), b" ".join(argv[1:]).decode(errors="replace"))
    return found
