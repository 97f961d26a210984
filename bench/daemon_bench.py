"""The daemon's price: claif-codd against the in-process engine, ``codex exec`` and a bare app-server.

Everything runs in one process against one offline test model (``claif_cod.testing.ModelServer``,
in a process of its own, which answers ``Echo: <text>`` word by word) and one ``CODEX_HOME``, so
only Codex, claif_cod and claif-codd are being timed. The script starts its own ``claif-codd
serve`` on a private socket in a temporary directory and always stops it (SIGTERM, then wait) at
the end, also on Ctrl-C.

1. Warm turn latency, interleaved round by round (one sample of each mode per round):

   ``daemon``      ``CodexClient(daemon="require")`` through the running daemon.
   ``daemon HTTP`` The ``openai`` SDK itself (``base_url=``) against the same daemon's ``--http``
                   endpoint: the REST API on loopback TCP instead of the Unix socket.
   ``in-process``  ``CodexClient(daemon="off")``: the engine and its app-server in this process.
   ``codex exec``  ``codex exec --json --skip-git-repo-check hello`` spawned per turn.
   ``raw``         The floor: a warm ``codex app-server`` driven directly with claif_cod's
                   ``AppServer`` (``thread/start`` of an ephemeral thread once, then per turn
                   ``turn/start`` and wait for ``turn/completed``), timed inside its event loop.

   The warm modes each continue one multi-turn conversation (the clients resend the history
   with the last reply and a new user message), so each reuses a warm Codex thread.
2. Time to the first streamed token: ``stream=True`` through the daemon (socket and HTTP) and in-process, and the
   first ``item/agentMessage/delta`` of the raw app-server, each on a second conversation.
3. Throughput: 32 concurrent conversations across 4 working directories through the daemon (one
   ``AsyncCodexClient`` per directory, 8 conversations each, 5 turns per conversation in sequence).
4. Memory: the daemon's RSS (``/proc/<pid>/status``) and that of its Codex children (``claif-codd
   status --json``) when fresh, before and after 100 named sessions got one turn each.

Targets are printed next to the measured values with PASS/MISS. They are informational: nothing
here asserts on time. The only checks are that every turn got the model's reply.

Run it with ``python bench/daemon_bench.py [--turns N] [--json PATH]``; see bench/README.md.

The code: ``offline_chat.py`` (what the model is asked and must answer), ``private_daemon.py`` (the
daemon under test), ``raw_app_server.py`` (the floor), ``daemon_bench_runs.py`` (the measurements),
``daemon_bench_report.py`` (targets, tables, JSON); this file runs them in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import codex_cli_bin
from bench_common import at_least_two, codex_version, machine, model_server_process, private_home
from daemon_bench_report import Results, evaluate, print_errors, render, write_json
from daemon_bench_runs import DIRECTORIES, SESSIONS, Latency, create_sessions, run_rounds, run_throughput
from offline_chat import progress
from private_daemon import Daemon, Memory, sigterm_as_interrupt
from raw_app_server import RawAppServer

from claif_cod.testing import write_codex_home


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=30, help="timed turns per latency mode (default 30)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples to PATH")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    codex = str(codex_cli_bin.bundled_codex_path())
    started = time.perf_counter()
    with (
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="claif-cod-daemon-bench-") as scratch,
        model_server_process() as (model_url, _),
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        home = write_codex_home(root / "codex-home", model_url)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        socket_path = run_dir / "codd.sock"
        os.environ.pop("CLAIF_COD_AUTOSTART", None)  # only the daemon started here may answer
        private_home(root)
        os.environ["CODEX_HOME"] = str(home)  # clients pass their environment on to Codex
        os.environ["CLAIF_COD_SOCKET"] = str(socket_path)
        env = {**os.environ}
        workdir = root / "work"
        directories = [root / f"work-{i}" for i in range(DIRECTORIES)]
        for d in (workdir, *directories):
            d.mkdir()

        daemon = Daemon(socket=socket_path, state_dir=root / "state", log=root / "codd.log", env=env)
        cleanup.callback(daemon.stop)
        cleanup.push(daemon.show_log_on_error)
        progress("starting claif-codd")
        daemon_start_ms = daemon.start()
        memory = [Memory.read("fresh daemon", daemon)]

        raw = RawAppServer(codex, workdir, env)
        cleanup.callback(raw.close)
        raw.start()

        latency = Latency(codex=codex, workdir=workdir, env=env, raw=raw, http_url=daemon.status()["http"])
        run_rounds(latency, args.turns)

        progress("throughput")
        throughput = asyncio.run(run_throughput(codex, directories))

        memory.append(Memory.read(f"before {SESSIONS} sessions", daemon))
        sessions = create_sessions(codex, workdir, SESSIONS)
        memory.append(Memory.read(f"after {SESSIONS} sessions", daemon))
        daemon_log = daemon.log_tail()
        cleanup.close()  # stop the raw app-server and the daemon now, so the report can say how that went

    meta = {
        "codex_version": codex_version(codex),
        "codex_path": codex,
        **machine(),
        "turns": args.turns,
        "daemon_pid": daemon.pid,
        "daemon_start_ms": daemon_start_ms,
        "daemon_stop": daemon.stop_report,
        "wall_s": time.perf_counter() - started,
    }
    results = Results(latency=latency, throughput=throughput, memory=memory, sessions=sessions, meta=meta)
    evaluate(results)
    print(render(results))
    print_errors(results, daemon_log)
    if args.json is not None:
        write_json(args.json, results)
        print(f"\nRaw samples written to {args.json}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the daemon and every Codex process were stopped", file=sys.stderr)
        sys.exit(130)
