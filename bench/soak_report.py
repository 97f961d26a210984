"""The soak's results: what passing means (every request answered, no chunk lost, the daemon
back to its baseline after every round) and the printed report.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from soak_client import Totals
from soak_daemon import Sample

MiB = 2**20


@dataclass
class Results:
    clients: int
    requests: int
    dirs: int
    words: int
    rounds: int
    sessions: bool = False
    """Named sessions (each request carries only its new message) instead of re-sent histories."""
    seconds: float = 0.0
    totals: Totals = field(default_factory=Totals)
    errors: list[str] = field(default_factory=list)
    baseline: Sample | None = None
    peak: Sample | None = None
    after_rounds: list[Sample] = field(default_factory=list)
    after_status: dict[str, Any] = field(default_factory=dict)
    daemon_warnings: list[str] = field(default_factory=list)
    daemon_exit: int | None = None
    rss_tolerance: int = 0
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def after(self) -> Sample | None:
        return self.after_rounds[-1] if self.after_rounds else None

    @property
    def back_to_baseline(self) -> dict[str, bool]:
        """fds, OS threads and tasks at the baseline after every round; RSS within tolerance at the end."""
        base, afters = self.baseline, self.after_rounds
        assert base is not None
        assert afters
        return {
            "fds": all(a.fds <= base.fds for a in afters),
            "threads": all(a.threads <= base.threads for a in afters),
            "tasks": base.tasks is not None and all(a.tasks is not None and a.tasks <= base.tasks for a in afters),
            "rss": afters[-1].rss - base.rss <= self.rss_tolerance,
        }

    @property
    def passed(self) -> bool:
        return (
            not self.errors
            and self.totals.lost_chunks == 0
            and self.totals.requests_ok == self.clients * self.requests * self.rounds
            and all(self.back_to_baseline.values())
        )


def percentile(samples: Sequence[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def render(results: Results) -> str:
    t = results.totals
    total = results.clients * results.requests * results.rounds
    lines = [
        f"Machine: {results.machine['platform']}, {results.machine['cpus']} CPUs, "
        f"Python {results.machine['python']}, claif_cod {results.machine['claif_cod']}",
        f"Soak:    {results.clients} clients x {results.requests} streaming requests x {results.rounds} round(s) over "
        f"{results.dirs} working directories, {results.words} words per reply"
        f"{', named sessions (constant-size bodies)' if results.sessions else ', histories re-sent'}; "
        f"{results.seconds:.1f} s, "
        f"{t.requests_ok / results.seconds if results.seconds else 0:.1f} requests/s",
        "",
        f"{'requests ok':<28}{t.requests_ok:>10} / {total}",
        f"{'requests failed':<28}{t.requests_failed:>10}",
        f"{'content chunks':<28}{t.content_chunks:>10} / {t.chunks_expected} expected",
        f"{'chunk notifications':<28}{t.notifications:>10}",
        f"{'lost chunks':<28}{t.lost_chunks:>10}",
    ]
    if t.complete_ms:
        lines += [
            f"{'first chunk ms p50 / p99':<28}{percentile(t.first_chunk_ms, 50):>10.1f} / "
            f"{percentile(t.first_chunk_ms, 99):.1f}",
            f"{'complete ms p50 / p99':<28}{percentile(t.complete_ms, 50):>10.1f} / "
            f"{percentile(t.complete_ms, 99):.1f}",
        ]
        first_turns = [ms for _, turn, _, ms in t.per_request if turn == 0]
        later_turns = [ms for _, turn, _, ms in t.per_request if turn > 0]
        for label, samples in (
            ("  turn 1 (new Codex thread)", first_turns),
            ("  later turns (warm thread)", later_turns),
        ):
            if samples:
                lines.append(f"{label:<28}{percentile(samples, 50):>10.1f} / {percentile(samples, 99):.1f}")
    if results.baseline and results.peak and results.after:
        b, p = results.baseline, results.peak
        afters = results.after_rounds
        ok = results.back_to_baseline

        def row(name: str, values: list[str], verdict: bool, note: str = "") -> str:
            return f"{name:<14}" + "".join(f"{v:>12}" for v in values) + f"  {'yes' if verdict else 'NO'}{note}"

        def tasks(sample: Sample) -> str:
            return "?" if sample.tasks is None else str(sample.tasks)

        heads = [
            "baseline",
            "peak",
            *(f"after r{i}" if len(afters) > 1 else "after" for i in range(1, len(afters) + 1)),
        ]
        growth = (results.after.rss - b.rss) / MiB
        rss_note = f" (last - baseline {growth:+.1f} MiB, tolerance {results.rss_tolerance / MiB:.0f})"
        lines += [
            "",
            f"{'daemon':<14}" + "".join(f"{h:>12}" for h in heads) + "  back to baseline",
            "-" * (14 + 12 * len(heads) + 18),
            row("fds", [str(x.fds) for x in (b, p, *afters)], ok["fds"]),
            row("threads", [str(x.threads) for x in (b, p, *afters)], ok["threads"]),
            row("asyncio tasks", [tasks(x) for x in (b, p, *afters)], ok["tasks"]),
            row("RSS MiB", [f"{x.rss / MiB:.1f}" for x in (b, p, *afters)], ok["rss"], rss_note),
            f"{'heap blocks':<14}"
            + "".join(f"{'?' if x.heap_blocks is None else x.heap_blocks:>12}" for x in (b, p, *afters))
            + "  (live CPython allocations after gc.collect(): steady while RSS creeps = fragmentation, not a leak)",
            "(peaks: fds, RSS and threads sampled every 0.25 s, asyncio tasks every 1 s; 'after' once every client",
            " has disconnected and no turn runs)",
        ]
    status = results.after_status
    if status:
        lines.append(
            f"After: {status['connections']} connections (the status probe), {status['turns_in_flight']} turns "
            f"in flight, {len(status['processes'])} Codex processes."
        )
    lines.append(
        f"Daemon warnings/errors in its log: {len(results.daemon_warnings)}; exit code after SIGTERM: "
        f"{results.daemon_exit}."
    )
    lines.append("PASS" if results.passed else "FAIL")
    return "\n".join(lines)
