"""Idle named sessions are unloaded from Codex, and each continues with its history afterwards.

Starts ``claif-codd serve --thread-idle-timeout T`` (default 5 s) on a private socket, warms one
Codex process in each of two working directories and lets that thread unload (the baseline: fresh
processes holding no thread), then gives ``--sessions`` named sessions (default 200, split over
the two directories) one turn each.  It waits until the daemon reports no loaded thread, reads
the Codex processes' RSS again (the goal: at most 60 MiB over the baseline), then continues every
session with a second turn, whose reply must show that the thread still holds the first one
(``[turn 2] Echo: ...``).  Nothing asserts on time or memory; the figures are printed.

Run: ``python bench/idle_sessions.py [--sessions N] [--idle-timeout S] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import codex_cli_bin
from bench_common import codex_version, elapsed_ms, private_home, run_header
from offline_chat import MODEL, expect_reply, progress
from private_daemon import Daemon, Memory, sigterm_as_interrupt

from claif_cod import CodexClient
from claif_cod.testing import ModelServer, write_codex_home

MiB = 2**20
GOAL_MIB = 60.0


def loaded_threads(daemon: Daemon) -> int:
    return sum(p.get("threads") or 0 for p in daemon.status()["processes"])


def wait_unloaded(daemon: Daemon, limit_s: float) -> float:
    """Seconds until the daemon's Codex processes hold no thread (polling ``claif-codd status``)."""
    start = time.monotonic()
    while loaded_threads(daemon):
        if time.monotonic() - start > limit_s:
            raise RuntimeError(f"threads still loaded after {limit_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


def session_turn(workdir: Path, session: str, text: str, turn: int) -> float:
    with CodexClient(working_dir=workdir, daemon="require", session_id=session) as client:
        start = time.perf_counter()
        completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
        took = elapsed_ms(start)
    expect_reply(completion.choices[0].message.content or "", text, turn)
    return took


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--idle-timeout", type=float, default=5.0, help="the daemon's --thread-idle-timeout")
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    codex = str(codex_cli_bin.bundled_codex_path())
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    with (
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="claif-cod-idle-bench-") as scratch,
        ModelServer() as server,
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        home = write_codex_home(root / "codex-home", server.url)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        os.environ.pop("CLAIF_COD_AUTOSTART", None)
        private_home(root)
        os.environ["CODEX_HOME"] = str(home)
        os.environ["CLAIF_COD_SOCKET"] = str(run_dir / "codd.sock")
        dirs = [root / "work-a", root / "work-b"]
        for d in dirs:
            d.mkdir()
        daemon = Daemon(
            socket=run_dir / "codd.sock",
            state_dir=root / "state",
            log=root / "codd.log",
            env={**os.environ},
            extra_args=["--thread-idle-timeout", str(args.idle_timeout)],
        )
        cleanup.callback(daemon.stop)
        cleanup.push(daemon.show_log_on_error)
        daemon.start()
        for i, d in enumerate(dirs):
            session_turn(d, f"warm-up {i}", "warm up", 1)
        wait_unloaded(daemon, args.idle_timeout + 60)
        snapshots = [Memory.read("fresh processes, no thread", daemon)]
        first: list[float] = []
        for i in range(args.sessions):
            progress(f"session {i + 1}/{args.sessions}: first turn")
            first.append(session_turn(dirs[i % 2], f"s{i}", f"session {i} one", 1))
        snapshots.append(Memory.read(f"after {args.sessions} first turns", daemon))
        unload_s = wait_unloaded(daemon, args.idle_timeout + 120)
        snapshots.append(Memory.read("after the idle timeout", daemon))
        second: list[float] = []
        for i in range(args.sessions):
            progress(f"session {i + 1}/{args.sessions}: second turn")
            second.append(session_turn(dirs[i % 2], f"s{i}", f"session {i} two", 2))
        snapshots.append(Memory.read(f"after {args.sessions} second turns", daemon))
        progress("")
        cleanup.close()
    base = snapshots[0].codex_rss
    lines = [
        f"Codex:   {codex_version(codex)}",
        run_header(
            load_start,
            f"{args.sessions} sessions over {len(dirs)} working directories; "
            f"--thread-idle-timeout {args.idle_timeout:g}; total {time.perf_counter() - started:.0f} s",
        ),
        "",
        f"{'when':<34}{'Codex RSS':>12}{'over fresh':>12}{'threads':>9}{'daemon RSS':>12}",
        "-" * 79,
    ]
    for m in snapshots:
        threads = sum(p.get("threads") or 0 for p in m.codex)
        lines.append(
            f"{m.label:<34}{m.codex_rss / MiB:>8.1f} MiB{(m.codex_rss - base) / MiB:>+8.1f} MiB"
            f"{threads:>9}{m.daemon_rss / MiB:>8.1f} MiB"
        )
    over = (snapshots[2].codex_rss - base) / MiB
    lines += [
        "",
        f"all threads unloaded {unload_s:.1f} s after the last first turn",
        f"first turn (new session)       median {statistics.median(first):.1f} ms",
        f"second turn (thread resumed)   median {statistics.median(second):.1f} ms; every reply held its history",
        f"Codex over fresh processes after the timeout: {over:+.1f} MiB (goal <= {GOAL_MIB:g} MiB: "
        f"{'PASS' if over <= GOAL_MIB else 'MISS'})",
        "",
        daemon.stop_report,
    ]
    print("\n".join(lines))
    if args.json is not None:
        payload: dict[str, Any] = {
            "first_ms": first,
            "second_ms": second,
            "unload_s": unload_s,
            "snapshots": [vars(m) for m in snapshots],
        }
        args.json.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the daemon and every Codex process were stopped", file=sys.stderr)
        sys.exit(130)
