"""CPU per turn with 16 concurrent conversations: raw app-server threads against claif_cod.

Three ways to run ``--conversations`` (default 16) conversations of ``--turns`` turns each, all at
once, against the offline model, in alternating blocks (``--blocks``, default 3 of each) so load
on the shared machine falls on each alike:

``raw``         one warm ``codex app-server`` driven directly (``RawAppServer``), ephemeral threads
``raw, same``   the same driven on the in-process client's own Codex process and engine loop: Codex
                processes differ from each other by a few percent of CPU per turn, so ``in-process``
                is also given against this floor, where only the client differs
``in-process``  ``AsyncCodexClient(daemon="off")``: the engine and its app-server in this process
``daemon``      ``AsyncCodexClient(daemon="require")`` through ``claif-codd``

CPU is user+system time from ``/proc/<pid>/stat`` of every process involved (this one, which runs
the clients, the app-server, and for the daemon row the daemon), summed over the block and divided
by its turns; the offline model runs in a process of its own and is counted for no row.  Nothing
asserts; every reply is checked.

Run: ``python bench/throughput_cpu.py [--conversations 16] [--turns 10] [--blocks 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import codex_cli_bin
from bench_common import codex_version, model_server_process, private_home, run_header
from offline_chat import MODEL, Conversation, expect_reply, progress
from private_daemon import Daemon, sigterm_as_interrupt
from raw_app_server import RawAppServer

from claif_cod import AsyncCodexClient
from claif_cod.testing import write_codex_home

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def cpu_of(pids: Sequence[int]) -> float:
    return sum(cpu_s(pid) for pid in pids)


async def client_block(client: AsyncCodexClient, conversations: int, turns: int, tag: str) -> None:
    async def converse(c: Conversation) -> None:
        for _ in range(turns):
            messages = c.ask()
            text = str(c.messages[-1]["content"])
            completion = await client.chat.completions.create(model=MODEL, messages=messages)
            reply = completion.choices[0].message.content or ""
            expect_reply(reply, text, c.turns)
            c.answer(reply)

    await asyncio.gather(*(converse(Conversation(f"{tag} {i}")) for i in range(conversations)))


def raw_block(raw: RawAppServer, conversations: int, turns: int, tag: str) -> None:
    threads = [raw.new_thread() for _ in range(conversations)]
    chats = [Conversation(f"{tag} {i}") for i in range(conversations)]

    async def converse(thread_id: str, c: Conversation) -> None:
        for _ in range(turns):
            text = c.next_text()
            result = await raw._turn(thread_id, text)
            expect_reply(result.reply, text, c.turns)

    async def everyone() -> None:
        await asyncio.gather(*(converse(t, c) for t, c in zip(threads, chats, strict=True)))

    raw.run(everyone(), timeout=600)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=3)
    args = parser.parse_args(argv)
    codex = str(codex_cli_bin.bundled_codex_path())
    load_start = os.getloadavg()[0]
    per_turn: dict[str, list[float]] = {"raw": [], "raw, same": [], "in-process": [], "daemon": []}
    wall: dict[str, list[float]] = {k: [] for k in per_turn}
    with (
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="claif-cod-cpu-bench-") as scratch,
        model_server_process() as (model_url, _),
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        home = write_codex_home(root / "codex-home", model_url)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        os.environ.pop("CLAIF_COD_AUTOSTART", None)
        private_home(root)
        os.environ["CODEX_HOME"] = str(home)
        os.environ["CLAIF_COD_SOCKET"] = str(run_dir / "codd.sock")
        workdir = root / "work"
        workdir.mkdir()
        daemon = Daemon(
            socket=run_dir / "codd.sock", state_dir=root / "state", log=root / "codd.log", env={**os.environ}
        )
        cleanup.callback(daemon.stop)
        daemon.start()
        raw = RawAppServer(codex, workdir, {**os.environ})
        cleanup.callback(raw.close)
        raw.start()
        assert raw.server is not None
        raw_pid = raw.server.pid

        async def run_clients() -> None:
            local = AsyncCodexClient(working_dir=workdir, daemon="off")
            remote = AsyncCodexClient(working_dir=workdir, daemon="require")
            try:
                await client_block(local, 1, 1, "warm local")
                await client_block(remote, 1, 1, "warm daemon")
                assert local.backend is not None
                assert local.backend.local is not None
                local_pids = [os.getpid()] + [s.pid for _, s, *_ in local.backend.local.engine.processes()]
                shared = RawAppServer.attached(local, workdir)
                daemon_pids = [os.getpid(), daemon.pid] + [p["pid"] for p in daemon.status()["processes"]]
                for block in range(args.blocks):
                    for mode in per_turn:
                        progress(f"block {block + 1}/{args.blocks}: {mode}")
                        tag = f"{mode} {block}"
                        pids = {
                            "raw": [os.getpid(), raw_pid],
                            "raw, same": local_pids,
                            "in-process": local_pids,
                            "daemon": daemon_pids,
                        }[mode]
                        before, start = cpu_of(pids), time.perf_counter()
                        if mode.startswith("raw"):
                            driver = raw if mode == "raw" else shared
                            await asyncio.to_thread(raw_block, driver, args.conversations, args.turns, tag)
                        else:
                            client = local if mode == "in-process" else remote
                            await client_block(client, args.conversations, args.turns, tag)
                        turns = args.conversations * args.turns
                        per_turn[mode].append((cpu_of(pids) - before) / turns * 1000)
                        wall[mode].append(turns / (time.perf_counter() - start))
            finally:
                await local.close()
                await remote.close()

        asyncio.run(run_clients())
        progress("")
        cleanup.close()
    floor = statistics.median(per_turn["raw"])
    print(f"Codex:   {codex_version(codex)}")
    print(
        run_header(
            load_start,
            f"{args.conversations} concurrent conversations x {args.turns} turns, {args.blocks} blocks per mode",
        )
    )
    print()
    print(f"{'mode':<14}{'CPU ms / turn (median)':>24}{'x raw':>8}{'turns/s (median)':>18}   blocks")
    for mode, samples in per_turn.items():
        med = statistics.median(samples)
        print(
            f"{mode:<14}{med:>24.1f}{med / floor:>8.2f}{statistics.median(wall[mode]):>18.1f}   "
            + ", ".join(f"{s:.1f}" for s in samples)
        )
    same = statistics.median(per_turn["in-process"]) / statistics.median(per_turn["raw, same"])
    print(f"in-process / raw on the same Codex process: {same:.2f}")
    print()
    print(daemon.stop_report)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the daemon and every Codex process were stopped", file=sys.stderr)
        sys.exit(130)
