"""Soak: many concurrent clients streaming through one claif-codd, then back to baseline.

What runs: one ``claif-codd serve`` on a private socket in a temporary directory, the offline
test model (``claif_cod.testing.ModelServer``) in a child process of its own (so its threads
don't compete with the clients for this process's GIL), and ``--clients`` simulated clients in
this process's event loop. Each client is one raw socket connection speaking the protocol
through ``claif_cod.protocol`` alone (framing, codec, message structs; no ``AsyncCodexClient``):
``hello``, then ``--requests`` streaming ``chat.completions.create`` calls in sequence, each one
continuing that client's conversation (history plus the last reply plus a new user message, so
the daemon reuses the client's warm Codex thread), then it disconnects. Clients are spread over
``--dirs`` working directories, i.e. that many Codex processes. With ``--rounds N`` all of that
happens N times, each round reconnecting every client and continuing its conversation: round 1
brings the daemon to its steady state, later rounds show whether anything still grows.

Every reply is checked: the model answers ``[[long:N]]`` with the N words ``w1 … wN``, one
delta each, so a request must see exactly N content chunks whose text joins to that reply, and
the ``StreamDone`` result must count every chunk notification the client received. Anything
else is an error (so is an error response, a dropped connection or a timeout).

Around the run it samples the daemon's file descriptors (``/proc/<pid>/fd``), RSS and OS threads
(``/proc/<pid>/status``) and its asyncio tasks (``daemon.stats``, logged on SIGUSR1): at the
baseline (after one warm-up request per directory, so the Codex processes exist), their peak
during the soak, and after each round once every client has disconnected and no turn runs. The
run passes when every request succeeded, no chunk was lost, fds, threads and tasks are back at
the baseline after every round and the final RSS is within ``--rss-tolerance`` MiB of it.

Run it with ``python bench/soak.py [--clients N] [--requests N] [--rounds N] [--json PATH]``; see bench/README.md.

The code: ``soak_client.py`` (one simulated client), ``soak_daemon.py`` (the daemon and what it
holds, the model server), ``soak_report.py`` (what passing means, the report); this file runs the
rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec
from bench_common import model_server_process, private_home
from soak_client import Conn, Conversation, Errors, Totals, simulated_client, stream_once
from soak_daemon import Daemon, Sample
from soak_report import MiB, Results, render

import claif_cod
from claif_cod.testing import write_codex_home


async def sample_peak(daemon: Daemon, peak: Sample, stop: asyncio.Event) -> None:
    """fds, RSS and threads every 0.25 s; tasks every second (each a SIGUSR1 and a log line)."""
    ticks = 0
    while not stop.is_set():
        now = daemon.sample()
        peak.fds, peak.rss, peak.threads = (
            max(peak.fds, now.fds),
            max(peak.rss, now.rss),
            max(peak.threads, now.threads),
        )
        if ticks % 4 == 0:
            os.kill(daemon.pid, signal.SIGUSR1)
        ticks += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def soak(daemon: Daemon, dirs: list[Path], results: Results) -> None:
    warm = Totals()
    for i, workdir in enumerate(dirs):  # start every Codex process before the baseline
        conn = await Conn.open(daemon.socket, "soak-warmup")
        try:
            await stream_once(conn, [{"role": "user", "content": f"warm-up {i} [[long:3]]"}], str(workdir), 3, warm)
        finally:
            await conn.close()
    await daemon.settle()
    results.baseline = await daemon.full_sample()
    peak = Sample(results.baseline.fds, results.baseline.rss, results.baseline.threads)
    conversations = [
        Conversation(i, str(dirs[i % len(dirs)]), session=f"soak-{i}" if results.sessions else None)
        for i in range(results.clients)
    ]
    results.totals.started = time.perf_counter()
    errors = Errors()
    tasks_peak: list[int] = []
    for round_number in range(1, results.rounds + 1):
        progress(f"round {round_number}/{results.rounds}: {results.clients} clients x {results.requests} requests")
        stats_before = len(daemon.stats_lines())
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_peak(daemon, peak, stop))
        started = time.perf_counter()
        await asyncio.gather(
            *(
                simulated_client(c, daemon.socket, results.requests, results.words, results.totals, errors)
                for c in conversations
            )
        )
        results.seconds += time.perf_counter() - started
        stop.set()
        await sampler
        tasks_peak += [int(line["tasks"]) for line in daemon.stats_lines()[stats_before:]]
        status = await daemon.settle()
        results.after_status = msgspec.to_builtins(status)
        results.after_rounds.append(await daemon.full_sample())
    peak.tasks = max(tasks_peak, default=None)
    results.peak = peak
    results.errors = errors.items


def progress(text: str) -> None:
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "claif_cod": claif_cod.__version__,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=200, help="concurrent simulated clients (default 200)")
    parser.add_argument("--requests", type=int, default=5, help="streaming requests per client and round (default 5)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds; each reconnects every client and continues its conversation (default 2)",
    )
    parser.add_argument("--dirs", type=int, default=4, help="working directories, i.e. Codex processes (default 4)")
    parser.add_argument("--words", type=int, default=16, help="words per reply = content chunks (default 16)")
    parser.add_argument(
        "--rss-tolerance",
        type=float,
        default=16.0,
        help="MiB the daemon's RSS may stay above the baseline after the run (default 16)",
    )
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="clients continue named sessions, each request carrying only its new message (constant-size bodies)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if min(args.clients, args.requests, args.rounds, args.dirs, args.words) < 1:
        parser.error("--clients, --requests, --rounds, --dirs and --words must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results(
        clients=args.clients,
        requests=args.requests,
        rounds=args.rounds,
        dirs=args.dirs,
        words=args.words,
        sessions=args.sessions,
        rss_tolerance=int(args.rss_tolerance * MiB),
        machine=machine(),
    )
    with tempfile.TemporaryDirectory(prefix="claif-soak-") as tmp, model_server_process() as (url, _):
        root = Path(tmp)
        private_home(root)
        home = write_codex_home(root / "codex_home", url)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        dirs = [root / f"wd{i}" for i in range(args.dirs)]
        for d in dirs:
            d.mkdir()
        env = {**os.environ, "CODEX_HOME": str(home)}
        env.pop("CLAIF_COD_SOCKET", None)
        daemon = Daemon(socket=run_dir / "codd.sock", state_dir=root / "state", log=root / "codd.log", env=env)
        daemon.start()
        try:
            asyncio.run(soak(daemon, dirs, results))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            results.daemon_exit = daemon.stop()
            results.daemon_warnings = daemon.log_warnings()
    print(render(results))
    for error in results.errors[:10]:
        print(f"  error: {error}")
    for line in results.daemon_warnings[:10]:
        print(f"  daemon: {line[:300]}")
    if args.json is not None:
        payload = asdict(results)
        payload["back_to_baseline"] = results.back_to_baseline if results.after else None
        payload["passed"] = results.passed
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if results.passed else 1


if __name__ == "__main__":
    sys.exit(main())
