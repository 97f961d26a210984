"""The Python side of a warm turn's CPU: claif_cod in-process against the raw driver, per thread.

``throughput_cpu.py`` measures whole turns (Codex included, ~30 ms a turn, of which the client's
share is ~1-2 ms and moves with Codex's noise). This isolates that share: sequential warm turns
against the offline model, in alternating blocks on one ``CodexClient(daemon="off")`` and its own
Codex process:

``raw``         ``RawAppServer.attached``: an ephemeral thread driven directly on the client's own
                engine loop (what a hand-written client costs: read, decode, route each notification)
``in-process``  ``client.chat.completions.create()`` on a conversation that grows by one turn a
                round (the whole history re-sent, as callers do)

For each block it reads this process's CPU time (``time.process_time``) and each thread's
(``time.thread_time`` in the caller's thread and on the engine loop), and Codex's from
``/proc/<pid>/stat``, and divides by the block's turns. Each block starts a new conversation with
one untimed turn. Nothing asserts on time; every reply is checked.

Run: ``python bench/python_cpu.py [--turns 40] [--blocks 4]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import codex_cli_bin
from bench_common import at_least_two, codex_version, model_server_process, offline_workdir, run_header
from floor_bench import Chat
from offline_chat import MODEL
from raw_app_server import RawAppServer
from throughput_cpu import cpu_s

from claif_cod import CodexClient


@dataclass
class Row:
    process: list[float] = field(default_factory=list)
    caller: list[float] = field(default_factory=list)
    engine: list[float] = field(default_factory=list)
    codex: list[float] = field(default_factory=list)


async def _thread_time() -> float:
    return time.thread_time()


def block(client: CodexClient, raw: RawAppServer | None, codex_pid: int, turns: int, tag: str, row: Row) -> None:
    """``turns`` warm turns on a new conversation (its first turn untimed), and their CPU per turn."""
    chat = Chat(tag, 0, False)
    thread = raw.new_thread() if raw is not None else ""
    steps = []
    for i in range(turns + 1):
        if i == 1:
            steps = [time.process_time(), time.thread_time(), client._core.loop.run(_thread_time()), cpu_s(codex_pid)]
        text = chat.ask()
        if raw is not None:
            chat.answer(raw.turn(thread, text).reply)
        else:
            chat.answer(
                client.chat.completions.create(model=MODEL, messages=chat.messages).choices[0].message.content or ""
            )
    ends = [time.process_time(), time.thread_time(), client._core.loop.run(_thread_time()), cpu_s(codex_pid)]
    per_turn = [(end - start) * 1000 / turns for start, end in zip(steps, ends, strict=True)]
    row.process.append(per_turn[0])
    row.caller.append(per_turn[1])
    row.engine.append(per_turn[2])
    row.codex.append(per_turn[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=40, help="timed turns per block (default 40)")
    parser.add_argument("--blocks", type=int, default=4, help="blocks of each row (default 4)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    codex = str(codex_cli_bin.bundled_codex_path())
    rows = {"raw": Row(), "in-process": Row()}
    with model_server_process() as (model_url, _), tempfile.TemporaryDirectory(prefix="claif-cod-pycpu-") as scratch:
        root = Path(scratch)
        workdir = offline_workdir(root, model_url)
        with CodexClient(working_dir=workdir, daemon="off") as client:
            client.models.list()  # starts the engine loop and a Codex process
            raw = RawAppServer.attached(client, workdir)
            assert client.backend is not None
            assert client.backend.local is not None
            (_, server, *_), *_ = client.backend.local.engine.processes()
            for b in range(args.blocks):
                block(client, raw, server.pid, args.turns, f"raw {b}", rows["raw"])
                block(client, None, server.pid, args.turns, f"ours {b}", rows["in-process"])
    print(f"Codex:   {codex_version(codex)}")
    print(run_header(load_start, f"{args.blocks} blocks of {args.turns} warm turns per row, alternating"))
    print("\nCPU ms per turn, median of the blocks (each block's value in brackets)\n")
    print(f"{'row':<12}{'this process':>14}{'caller thread':>15}{'engine loop':>13}{'codex':>9}")
    m = statistics.median
    for name, row in rows.items():
        print(f"{name:<12}{m(row.process):>14.2f}{m(row.caller):>15.2f}{m(row.engine):>13.2f}{m(row.codex):>9.1f}")
        print(f"{'':<12}  [{', '.join(f'{v:.2f}' for v in row.process)}]")
    ours, floor = rows["in-process"], rows["raw"]
    print(f"\nin-process - raw, this process: {m(ours.process) - m(floor.process):+.2f} ms a turn")


if __name__ == "__main__":
    main()
