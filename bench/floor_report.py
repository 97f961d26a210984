"""``floor_bench.py``'s rows, its samples per history size, and its report (medians against the
floor, paired differences with their 95% bootstrap intervals, the ``codex exec`` ratios)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench_common import median_interval

RAW, RAW_PERSISTED, EXEC = "raw (ephemeral)", "raw persisted", "codex exec"
RAW_SHARED = "raw, same process"
LOCAL, DAEMON, HTTP = "in-process", "daemon socket", "daemon HTTP"
LEAN = "daemon, lean socket"
LOCAL_SESSION, DAEMON_SESSION = "in-process session", "daemon session"
LOCAL_ASYNC, RAW_SHARED_ASYNC = "in-process async", "raw, async's process"
TURN_ROWS = (
    RAW,
    RAW_SHARED,
    RAW_SHARED_ASYNC,
    RAW_PERSISTED,
    LOCAL,
    LOCAL_ASYNC,
    DAEMON,
    LEAN,
    HTTP,
    LOCAL_SESSION,
    DAEMON_SESSION,
    EXEC,
)
FIRST_ROWS = (RAW, RAW_SHARED, RAW_SHARED_ASYNC, LOCAL, LOCAL_ASYNC, DAEMON, LEAN, HTTP)
ROW_NAMES = {
    "shared": RAW_SHARED,
    "local-async": LOCAL_ASYNC,
    "persisted": RAW_PERSISTED,
    "local": LOCAL,
    "daemon": DAEMON,
    "lean": LEAN,
    "http": HTTP,
    "local-session": LOCAL_SESSION,
    "daemon-session": DAEMON_SESSION,
    "exec": EXEC,
}
"""``--rows`` names; the floor (``raw``) always runs, and ``local-async`` brings its own floor
(:data:`RAW_SHARED_ASYNC`)."""
POOLED = "all sizes"
"""The paired lines' last column: every size's rounds together, the turn's overhead as a whole (its
interval is narrower than a size's, from five times the rounds)."""


@dataclass
class Phase:
    label: str
    turns: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in TURN_ROWS})
    firsts: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in FIRST_ROWS})


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def render(phases: list[Phase], meta: dict[str, Any]) -> str:
    lines = [
        f"Codex:   {meta['codex_version']}",
        f"Machine: {meta['platform']}, {meta['cpu_count']} CPUs, Python {meta['python']}, "
        f"claif_cod {meta['claif_cod']}",
        f"Load average (1 min) at start {meta['load_start']:.2f}, at end {meta['load_end']:.2f}; "
        f"{meta['turns']} timed turns per row and size, interleaved; total {meta['wall_s']:.0f} s",
        f"Model pace {meta['pace_ms']} ms a word; Codex trusts "
        + ("one certificate (--one-ca)" if meta["one_ca"] else "the system's CA store"),
    ]
    lines += _table(phases, "turns", "Warm turn, median ms (and median - raw)")
    for row in _ran(phases, "turns", (DAEMON, LOCAL)):
        if phases[0].turns[EXEC]:
            name = f"exec / {row}"
            lines.append(
                f"{name:<22}" + "".join(f"{median(p.turns[EXEC]) / median(p.turns[row]):>19.1f}x" for p in phases)
            )
    lines += _table(phases, "firsts", "Time to first token, median ms (and median - raw first delta)")
    return "\n".join(lines)


def _table(phases: list[Phase], kind: str, title: str) -> list[str]:
    """Each row's median against the floor's, then the client rows' paired differences."""
    header = f"{'row':<22}" + "".join(f"{p.label:>20}" for p in phases) + f"{POOLED:>20}"
    lines = ["", title, "", header, "-" * (22 + 20 * (len(phases) + 1))]
    for row in _ran(phases, kind, TURN_ROWS if kind == "turns" else FIRST_ROWS):
        cells = []
        for p in phases:
            samples = getattr(p, kind)
            m, floor = median(samples[row]), median(samples[RAW])
            cells.append(f"{m:8.1f} ({m - floor:+6.1f})" if row != RAW else f"{m:8.1f}         ")
        lines.append(f"{row:<22}" + "".join(f"{c:>20}" for c in cells))
    return lines + _comparisons(phases, kind)


def _ran(phases: list[Phase], kind: str, rows: Sequence[str]) -> list[str]:
    return [row for row in rows if getattr(phases[0], kind)[row]]


def _comparisons(phases: list[Phase], kind: str) -> list[str]:
    """The client rows against their floors, for the rows that ran."""
    ran = set(_ran(phases, kind, TURN_ROWS if kind == "turns" else FIRST_ROWS))
    lines = []
    if {LOCAL, RAW_SHARED} <= ran:
        lines.append(_same_process_line(phases, kind))
        lines += _paired_lines(phases, kind, LOCAL, RAW_SHARED, "  paired")
    if {LOCAL_ASYNC, RAW_SHARED_ASYNC} <= ran:
        lines += _paired_lines(phases, kind, LOCAL_ASYNC, RAW_SHARED_ASYNC, "async - its proc, paired")
    if DAEMON in ran:
        lines += _paired_lines(phases, kind, DAEMON, RAW, "daemon - raw, paired")
    if {DAEMON, LEAN} <= ran:
        lines += _paired_lines(phases, kind, DAEMON, LEAN, "daemon - lean, paired")
    return lines


def _same_process_line(phases: list[Phase], kind: str) -> str:
    """``in-process`` against the floor in its own Codex process: only the client differs."""
    cells = []
    for p in phases:
        samples = getattr(p, kind)
        cells.append(f"{median(samples[LOCAL]) - median(samples[RAW_SHARED]):+17.1f}   ")
    return f"{'in-process - same proc':<22}" + "".join(f"{c:>20}" for c in cells)


def _paired_lines(phases: list[Phase], kind: str, row: str, floor: str, label: str) -> list[str]:
    """The median of the per-round differences (both took their turns in the same round, so the
    machine's drift over the run cancels out), and its 95% bootstrap interval below it: per size,
    then for every size's rounds together (:data:`POOLED`)."""
    cells, intervals = [], []
    per_size = [[a - b for a, b in zip(getattr(p, kind)[row], getattr(p, kind)[floor], strict=True)] for p in phases]
    for differences in [*per_size, [d for size in per_size for d in size]]:
        low, high = median_interval(differences)
        cells.append(f"{median(differences):+17.1f}   ")
        intervals.append(f"[{low:+.1f}, {high:+.1f}]  ")
    return [
        f"{label:<22}" + "".join(f"{c:>20}" for c in cells),
        f"{'  95% interval':<22}" + "".join(f"{c:>20}" for c in intervals),
    ]
