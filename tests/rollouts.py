"""Codex's rollouts damaged as a full disk, a crash or an edit leaves them (the tests of engine/rollout_check.py).

Codex 0.163 writes a thread's rollout as JSON lines under ``$CODEX_HOME/sessions``; a turn's last
line is its ``task_complete`` event.  Tests with a single persisted thread find it as the only one.
"""

from __future__ import annotations

from pathlib import Path

CUTS = ("after its first turn", "in the middle of a line")


def the_rollout(codex_home: Path) -> Path:
    """The rollout of the home's one persisted thread."""
    [path] = sorted((codex_home / "sessions").rglob("*.jsonl"))
    return path


def cut_short(codex_home: Path, cut: str, *, then: str) -> None:
    """Cut the rollout at the end of its first turn, or halfway through the first line holding
    ``then`` (a later turn's text): what is left is a shorter history, every line before intact."""
    path = the_rollout(codex_home)
    lines = path.read_bytes().splitlines(keepends=True)
    if cut == CUTS[0]:
        end = next(i for i, line in enumerate(lines) if b'"type":"task_complete"' in line)
        path.write_bytes(b"".join(lines[: end + 1]))
    else:
        at = next(i for i, line in enumerate(lines) if then.encode() in line)
        path.write_bytes(b"".join(lines[:at]) + lines[at][: len(lines[at]) // 2])
