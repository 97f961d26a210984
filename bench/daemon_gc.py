"""The daemon's garbage collections over many turns: as shipped (start-up frozen, ``gc.freeze()``)
beside the same daemon with the freeze turned off.

Two private ``claif-codd serve`` processes on the same Codex and offline model, each fed by a lean
HTTP client (``floor_bench.LeanHttp``) on four conversations of 10 messages growing to ~60 (then
begun again, as new conversations are), turns interleaved round by round.  A ``sitecustomize``
on the daemons' ``PYTHONPATH`` (written by this script; nothing in claif_codd is changed) logs
every collection: its generation, its time, and for a full one the objects it walked; for the
``unfrozen`` daemon it also makes ``gc.freeze`` do nothing.  Reports per daemon the collections of
each generation (count, median and max ms) and the turns' p50 / p99 / max.  Nothing asserts.
Run: ``python bench/daemon_gc.py [--turns 600]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import codex_cli_bin
from bench_common import codex_version, model_server_process, offline_workdir, run_header
from floor_bench import Chat, LeanHttp
from private_daemon import Daemon

SITECUSTOMIZE = """
import gc, os, time
_log = open(os.environ["CLAIF_BENCH_GC_LOG"], "a", buffering=1)
_started = [0.0]
def _timed(phase, info):
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    generation = info["generation"]
    walked = len(gc.get_objects(2)) if generation == 2 else 0
    _log.write(f"{generation} {(time.perf_counter() - _started[0]) * 1000:.3f} {walked}\\n")
gc.callbacks.append(_timed)
if os.environ.get("CLAIF_BENCH_NO_FREEZE"):
    gc.freeze = lambda: None
"""
VARIANTS = ("frozen", "unfrozen")


def _report(name: str, log: Path, turns: list[float]) -> list[str]:
    by_generation: dict[int, list[tuple[float, int]]] = collections.defaultdict(list)
    for line in log.read_text().splitlines():
        gen, ms, objects = line.split()
        by_generation[int(gen)].append((float(ms), int(objects)))
    lines = [f"{name}:"]
    for generation, entries in sorted(by_generation.items()):
        times = [ms for ms, _ in entries]
        walked = (
            ", each (ms / objects walked): " + ", ".join(f"{ms:.1f} / {w}" for ms, w in entries)
            if generation == 2
            else ""
        )
        lines.append(
            f"  gen{generation}: {len(times):4} collections, median {statistics.median(times):7.3f} ms, "
            f"max {max(times):7.3f} ms{walked}"
        )
    ordered = sorted(turns)
    lines.append(
        f"  turns {len(ordered)}: p50 {ordered[len(ordered) // 2]:.2f} ms, "
        f"p99 {ordered[int(len(ordered) * 0.99)]:.2f} ms, max {ordered[-1]:.2f} ms"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=600, help="turns per daemon")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    with (
        model_server_process() as (model_url, _),
        tempfile.TemporaryDirectory(prefix="claif-cod-gc-bench-") as scratch,
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        workdir = offline_workdir(root, model_url)
        site = root / "gcsite"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        os.environ.pop("CLAIF_COD_AUTOSTART", None)
        clients: dict[str, LeanHttp] = {}
        logs: dict[str, Path] = {}
        for name in VARIANTS:
            run_dir = root / f"run-{name}"
            run_dir.mkdir(mode=0o700)
            logs[name] = root / f"gc-{name}.log"
            env = {**os.environ, "PYTHONPATH": str(site), "CLAIF_BENCH_GC_LOG": str(logs[name])}
            if name == "unfrozen":
                env["CLAIF_BENCH_NO_FREEZE"] = "1"
            daemon = Daemon(
                socket=run_dir / "codd.sock", state_dir=root / f"state-{name}", log=root / f"{name}.log", env=env
            )
            cleanup.callback(daemon.stop)
            cleanup.push(daemon.show_log_on_error)
            daemon.start()
            clients[name] = LeanHttp(f"{daemon.status()['http']}/v1", workdir)
            cleanup.callback(clients[name].close)
        chats = {name: [Chat(f"{name} c{i}", 10, False) for i in range(4)] for name in VARIANTS}
        turns: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for round_no in range(args.turns):
            for name in VARIANTS if round_no % 2 == 0 else reversed(VARIANTS):
                slot = round_no % 4
                if len(chats[name][slot].messages) > 60:
                    chats[name][slot] = Chat(f"{name} c{round_no}", 10, False)
                turns[name].append(clients[name].turn(chats[name][slot]))
        cleanup.close()
        report = [_line for name in VARIANTS for _line in _report(name, logs[name], turns[name])]
    print(f"Codex:   {codex_version(str(codex_cli_bin.bundled_codex_path()))}")
    print(
        run_header(
            load_start, f"{args.turns} turns per daemon, interleaved; total {time.perf_counter() - started:.0f} s"
        )
    )
    print("\n".join(report))


if __name__ == "__main__":
    main()
