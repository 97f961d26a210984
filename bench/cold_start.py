"""Cold start: what a new process pays before its first answer, old code against new, interleaved.

    python bench/cold_start.py --source before=/tmp/claif-before --source after=. --rounds 5

Each ``--source LABEL=DIR`` is a checkout of claif_cod run with this interpreter
(``PYTHONPATH=DIR:DIR/daemon``), so two versions are measured on the same machine, same Codex and
same offline model, round by round.  ``LABEL=DIR@PYTHON`` runs it with another interpreter, whose
environment's packages it then uses (one without aiohttp, as a plain ``pip install`` now is).
Per round, each metric is taken for every source in turn (the order swapped every round), each a
fresh process:

- ``--version``: ``python -m claif_cod.cli --version``;
- ``first turn, in-process``: a script that imports ``CodexClient`` and asks one question with
  ``daemon="off"`` (start to exit), with the source's probe cache warm (after one earlier run);
- ``first turn, in-process, cold cache``: the same with an empty ``$XDG_CACHE_HOME``;
- ``codd start -> ready``: ``python -m claif_codd start`` (it returns once the socket answers);
- ``first turn, via daemon``: the script with ``daemon="require"`` against that running daemon
  (its Codex not yet started: the first turn includes the daemon spawning Codex).

Every run gets a private ``HOME`` (Codex's shell snapshot sources the login profile) and
``TMPDIR``; the files left in that ``TMPDIR`` are counted at the end.  Medians are printed, and for
every source after the first its paired difference from the first (the median of the rounds'
differences, with a 95% interval: this VM's slow and fast minutes fall on both sides of a pair
alike); the whole record is written to ``bench/results/cold_start-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_common import codex_version, machine, median_interval

from claif_cod.engine.discovery import find_codex
from claif_cod.testing import ModelServer, write_codex_home

SCRIPT = """
from claif_cod import CodexClient
with CodexClient(daemon={mode!r}, model="o4-mini") as client:
    reply = client.chat.completions.create(model="o4-mini", messages=[{{"role": "user", "content": "hi"}}])
assert reply.choices[0].message.content == "Echo: hi", reply
"""
METRICS = (
    "--version",
    "first turn, in-process",
    "first turn, in-process, cold cache",
    "codd start -> ready",
    "first turn, via daemon",
)


class Source:
    def __init__(self, label: str, root: Path, python: str, scratch: Path, codex: str, server_url: str) -> None:
        self.label = label
        self.root = root.resolve()
        self.python = python
        self.dir = scratch / label
        for sub in ("home", "tmp", "cache", "run", "work"):
            (self.dir / sub).mkdir(parents=True, mode=0o700)
        self.socket = self.dir / "run" / "codd.sock"
        codex_home = write_codex_home(self.dir / "codex_home", server_url)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": f"{self.root}:{self.root / 'daemon'}",
            "HOME": str(self.dir / "home"),
            "TMPDIR": str(self.dir / "tmp"),
            "XDG_CACHE_HOME": str(self.dir / "cache"),
            "CODEX_HOME": str(codex_home),
            "CLAIF_COD_CODEX_PATH": codex,
            "CLAIF_COD_SOCKET": str(self.socket),
            "CLAIF_COD_AUTOSTART": "0",
        }

    def run(self, *args: str, env: dict[str, str] | None = None) -> float:
        start = time.perf_counter()
        done = subprocess.run(
            [self.python, *args],
            env=env or self.env,
            cwd=self.dir / "work",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        took = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{self.label}: {' '.join(args[:3])} failed:\n{done.stderr[-2000:]}")
        return took * 1000

    def turn(self, mode: str, env: dict[str, str] | None = None) -> float:
        return self.run("-c", SCRIPT.format(mode=mode), env=env)

    def cold_cache_turn(self) -> float:
        cold = tempfile.mkdtemp(dir=self.dir, prefix="cold-cache-")
        try:
            return self.turn("off", {**self.env, "XDG_CACHE_HOME": cold})
        finally:
            shutil.rmtree(cold)

    def start_daemon(self) -> float:
        return self.run("-m", "claif_codd", "start", "--socket", str(self.socket))

    def stop_daemon(self) -> None:
        self.run("-m", "claif_codd", "stop", "--socket", str(self.socket))

    def left_in_tmp(self) -> list[str]:
        return sorted(p.name for p in (self.dir / "tmp").iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", required=True, metavar="LABEL=DIR[@PYTHON]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--codex", default=None, help="Codex binary (default: found like CodexClient finds it)")
    args = parser.parse_args()
    codex = find_codex(args.codex)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="claif-cold-start-") as scratch, ModelServer() as server:
        sources = []
        for spec in args.source:
            label, _, where = spec.partition("=")
            root, _, python = where.partition("@")
            sources.append(Source(label, Path(root), python or sys.executable, Path(scratch), codex, server.url))
            results[label] = {metric: [] for metric in METRICS}
        for source in sources:  # warm each source's probe cache (and the page cache) once, untimed
            source.turn("off")
        for round_no in range(args.rounds):
            one_round(sources[:: -1 if round_no % 2 else 1], results)
        leftovers = {source.label: source.left_in_tmp() for source in sources}
    report(results, leftovers, codex, args.rounds)


def one_round(sources: list[Source], results: dict[str, dict[str, list[float]]]) -> None:
    """Every metric once per source, the sources taking turns metric by metric."""
    steps: list[tuple[str, Callable[[Source], float]]] = [
        ("--version", lambda source: source.run("-m", "claif_cod.cli", "--version")),
        ("first turn, in-process", lambda source: source.turn("off")),
        ("first turn, in-process, cold cache", Source.cold_cache_turn),
        ("codd start -> ready", Source.start_daemon),
        ("first turn, via daemon", lambda source: source.turn("require")),
    ]
    try:
        for metric, step in steps:
            for source in sources:
                results[source.label][metric].append(step(source))
    finally:
        for source in sources:
            if source.socket.exists():
                source.stop_daemon()


def report(
    results: dict[str, dict[str, list[float]]], leftovers: dict[str, list[str]], codex: str, rounds: int
) -> None:
    labels = list(results)
    first, others = labels[0], labels[1:]
    print(f"codex: {codex} ({codex_version(codex)}), {rounds} rounds, medians in ms (min in brackets)")
    print(
        f"{'':<38}"
        + "".join(f"{label:>20}" for label in labels)
        + "".join(f"{f'{label} - {first}, paired':>32}" for label in others)
    )
    for metric in METRICS:
        cells = "".join(
            f"{statistics.median(results[label][metric]):>11.0f} [{min(results[label][metric]):>5.0f}]"
            for label in labels
        )
        for label in others:
            differences = [b - a for a, b in zip(results[first][metric], results[label][metric], strict=True)]
            low, high = median_interval(differences)
            cells += f"{statistics.median(differences):>+14.0f} [{low:>+6.0f}, {high:>+6.0f}]"
        print(f"{metric:<38}{cells}")
    for label, names in leftovers.items():
        print(f"left in TMPDIR by {label}: {len(names)} {names[:5]}")
    record: dict[str, Any] = {
        "machine": machine(),
        "codex": codex_version(codex),
        "rounds": rounds,
        "ms": results,
        "left_in_tmpdir": leftovers,
    }
    out = Path(__file__).parent / "results" / f"cold_start-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
