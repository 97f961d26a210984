"""The report of ``daemon_bench.py``: its targets (informational, nothing asserts), the printed
tables, the JSON of the raw samples, and the first failures in full.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon_bench_runs import (
    CONVERSATIONS_PER_DIRECTORY,
    DAEMON,
    DAEMON_FIRST,
    DIRECTORIES,
    EXEC,
    FIRST_MODES,
    HTTP,
    HTTP_FIRST,
    LOCAL,
    LOCAL_FIRST,
    MODES,
    RAW,
    RAW_FIRST,
    SESSIONS,
    TURN_MODES,
    Latency,
    Sessions,
    Throughput,
)
from offline_chat import MODEL, Summary
from private_daemon import Memory

TARGET_EXEC_RATIO = 5.0  # codex exec median / daemon median, at least
TARGET_OVERHEAD_MS = 3.0  # daemon median - raw median, at most (warm turn and first token)
MiB = 2**20


@dataclass
class Results:
    latency: Latency
    throughput: Throughput
    memory: list[Memory]
    sessions: Sessions
    meta: dict[str, Any]
    summaries: dict[str, Summary] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)


def target(name: str, measured: float, unit: str, goal: str, ok: bool | None) -> dict[str, Any]:
    return {
        "name": name,
        "measured": measured,
        "unit": unit,
        "target": goal,
        "result": "—" if ok is None else "PASS" if ok else "MISS",
    }


def evaluate(results: Results) -> None:
    s = results.latency.samples
    summaries = results.summaries = {mode: Summary.of(samples) for mode, samples in s.items()}
    ratio = summaries[EXEC].median / summaries[DAEMON].median
    over = summaries[DAEMON].median - summaries[RAW].median
    local_over = summaries[LOCAL].median - summaries[RAW].median
    first_over = summaries[DAEMON_FIRST].median - summaries[RAW_FIRST].median
    local_first_over = summaries[LOCAL_FIRST].median - summaries[RAW_FIRST].median
    http_over = summaries[HTTP].median - summaries[DAEMON].median
    http_first_over = summaries[HTTP_FIRST].median - summaries[DAEMON_FIRST].median
    errors = len(results.throughput.errors) + len(results.sessions.errors)
    results.targets = [
        target(
            "codex exec / daemon, warm turn p50", ratio, "x", f">= {TARGET_EXEC_RATIO:g}x", ratio >= TARGET_EXEC_RATIO
        ),
        target("daemon - raw, warm turn p50", over, "ms", f"<= {TARGET_OVERHEAD_MS:g} ms", over <= TARGET_OVERHEAD_MS),
        target("in-process - raw, warm turn p50", local_over, "ms", "", None),
        target(
            "daemon - raw, first token p50",
            first_over,
            "ms",
            f"<= {TARGET_OVERHEAD_MS:g} ms",
            first_over <= TARGET_OVERHEAD_MS,
        ),
        target("in-process - raw, first token p50", local_first_over, "ms", "", None),
        target("HTTP - socket, warm turn p50", http_over, "ms", "", None),
        target("HTTP - socket, first token p50", http_first_over, "ms", "", None),
        target("errors (throughput + sessions)", errors, "", "0", errors == 0),
    ]


def history_growth(samples: Sequence[float]) -> float:
    third = len(samples) // 3
    return statistics.median(samples[-third:]) - statistics.median(samples[:third])


def mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


def render(results: Results) -> str:
    meta, summaries, bench = results.meta, results.summaries, results.latency
    turns = meta["turns"]
    lines = [
        f"Codex:   {meta['codex_version']}  ({meta['codex_path']})",
        f"Machine: {meta['platform']}, {meta['cpu_count']} CPUs, Python {meta['python']}, "
        f"claif_cod {meta['claif_cod']}",
        f"Daemon:  claif-codd pid {meta['daemon_pid']}, ready {meta['daemon_start_ms']:.0f} ms after spawn; "
        f"offline model {MODEL}; total {meta['wall_s']:.1f} s",
        "",
        f"1. Warm turn latency: {turns} turns per mode, interleaved",
        "",
        f"{'mode':<34}{'median ms':>11}{'p90 ms':>9}{'p99 ms':>9}{'min ms':>9}{'median / exec':>15}",
        "-" * 87,
    ]
    baseline = summaries[EXEC].median
    for mode in TURN_MODES:
        m = summaries[mode]
        lines.append(f"{mode:<34}{m.median:>11.1f}{m.p90:>9.1f}{m.p99:>9.1f}{m.min:>9.1f}{m.median / baseline:>15.3f}")
    lines += [
        "",
        f"2. Time to first streamed token: {turns} turns per mode, same rounds",
        "",
        f"{'mode':<34}{'median ms':>11}{'p90 ms':>9}{'p99 ms':>9}{'min ms':>9}{'median - raw':>15}",
        "-" * 87,
    ]
    floor = summaries[RAW_FIRST].median
    for mode in FIRST_MODES:
        m = summaries[mode]
        lines.append(f"{mode:<34}{m.median:>11.1f}{m.p90:>9.1f}{m.p99:>9.1f}{m.min:>9.1f}{m.median - floor:>+15.1f}")
    reused = ", ".join(f"{mode} {bench.reused.get(mode, 0)}/{turns}" for mode in MODES if mode != EXEC)
    lines += [
        "",
        f"Warm thread reused (cached prompt prefix): {reused}.",
    ]
    if turns >= 6:
        growth = ", ".join(f"{mode} {history_growth(bench.samples[mode]):+.1f} ms" for mode in MODES if mode != EXEC)
        lines.append(
            f"Growth with the conversation (median of the last third of the rounds minus the first third): "
            f"{growth}. The clients resend the whole history every turn; raw sends only the new message."
        )
    lines += [
        "Warm-up, not in the tables: " + ", ".join(f"{mode} {bench.warmup[mode]:.1f} ms" for mode in TURN_MODES) + ".",
    ]
    t = results.throughput
    ok = len(t.latencies)
    per_turn = Summary.of(t.latencies) if len(t.latencies) >= 2 else None
    lines += [
        "",
        f"3. Throughput through the daemon: {t.conversations} concurrent conversations, {DIRECTORIES} working "
        f"directories ({CONVERSATIONS_PER_DIRECTORY} each, one AsyncCodexClient per directory), "
        f"{t.turns} turns each",
        "",
        f"turns completed     {ok}/{t.conversations * t.turns} in {t.wall_s:.2f} s = {ok / t.wall_s:.1f} turns/s"
        if t.wall_s
        else "turns completed     0",
    ]
    if per_turn is not None:
        lines.append(
            f"per-turn latency    p50 {per_turn.median:.1f} ms, p90 {per_turn.p90:.1f} ms, "
            f"p99 {per_turn.p99:.1f} ms, min {per_turn.min:.1f} ms"
        )
    lines += [
        f"errors              {len(t.errors)}",
        f"warm thread reused  {t.reused}/{t.conversations * (t.turns - 1)} follow-up turns",
        f"warm-up (untimed)   {t.warmup_ms:.0f} ms for the first turn in each directory",
        "",
        f"4. Memory with {SESSIONS} idle sessions (one turn each, one client at a time)",
        "",
    ]
    sessions = results.sessions
    if len(sessions.first_turns) >= 2:
        first = Summary.of(sessions.first_turns)
        lines.append(
            f"session first turn  p50 {first.median:.1f} ms, p90 {first.p90:.1f} ms, p99 {first.p99:.1f} ms "
            f"(the create() call of a new client: connect, hello, thread/start, turn)"
        )
    lines += [
        f"all {SESSIONS} sessions    {sessions.wall_s:.1f} s including client construction and close; "
        f"{len(sessions.errors)} errors",
        "",
        f"{'when':<26}{'daemon RSS':>13}{'Codex RSS':>13}{'processes':>11}{'threads':>9}{'total':>13}{'sessions':>10}",
        "-" * 95,
    ]
    for snap in results.memory:
        threads = sum(p.get("threads") or 0 for p in snap.codex)
        lines.append(
            f"{snap.label:<26}{mib(snap.daemon_rss):>13}{mib(snap.codex_rss):>13}{len(snap.codex):>11}{threads:>9}"
            f"{mib(snap.daemon_rss + snap.codex_rss):>13}{snap.sessions:>10}"
        )
    before, after = results.memory[-2], results.memory[-1]
    lines += [
        f"per idle session          daemon {(after.daemon_rss - before.daemon_rss) / SESSIONS / 1024:+.1f} KiB, "
        f"Codex {(after.codex_rss - before.codex_rss) / SESSIONS / 1024:+.1f} KiB",
        "",
        "Targets (informational; nothing asserts)",
        "",
        f"{'target':<40}{'measured':>12}{'goal':>12}{'result':>8}",
        "-" * 72,
    ]
    for row in results.targets:
        value = (
            f"{row['measured']:.1f}x"
            if row["unit"] == "x"
            else (f"{row['measured']:+.1f} ms" if row["unit"] == "ms" else f"{row['measured']:g}")
        )
        lines.append(f"{row['name']:<40}{value:>12}{row['target'] or '—':>12}{row['result']:>8}")
    lines += ["", meta["daemon_stop"]]
    return "\n".join(lines)


def write_json(path: Path, results: Results) -> None:
    t = results.throughput
    payload = {
        "meta": results.meta,
        "unit": "ms",
        "latency": {
            "samples": results.latency.samples,
            "warmup": results.latency.warmup,
            "summary": {mode: vars(s) for mode, s in results.summaries.items()},
            "warm_thread_reused": results.latency.reused,
        },
        "throughput": {
            "conversations": t.conversations,
            "turns_per_conversation": t.turns,
            "directories": DIRECTORIES,
            "completed": len(t.latencies),
            "wall_s": t.wall_s,
            "turns_per_s": len(t.latencies) / t.wall_s if t.wall_s else 0.0,
            "latencies": t.latencies,
            "warm_thread_reused": t.reused,
            "errors": t.errors,
            "warmup_ms": t.warmup_ms,
        },
        "memory": {
            "sessions": SESSIONS,
            "create_s": results.sessions.wall_s,
            "first_turn_ms": results.sessions.first_turns,
            "errors": results.sessions.errors,
            "snapshots": [
                {
                    "label": m.label,
                    "daemon_rss_bytes": m.daemon_rss,
                    "codex_rss_bytes": m.codex_rss,
                    "sessions": m.sessions,
                    "processes": m.codex,
                }
                for m in results.memory
            ],
        },
        "targets": results.targets,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def print_errors(results: Results, daemon_log: str) -> None:
    """The first failures in full, on stderr: they are claif_cod problems worth a report."""
    errors = results.throughput.errors + results.sessions.errors
    if not errors:
        return
    print(f"\n{len(errors)} failed turns; the first ones:", file=sys.stderr)
    for error in errors[:3]:
        print(error, file=sys.stderr)
    print(f"Daemon log, last lines:\n{daemon_log}", file=sys.stderr)
