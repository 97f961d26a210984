"""An ``AsyncCodexClient`` under trio against the same client under asyncio: a warm turn and a
stream's first token.

Under trio a request takes openai's own HTTP pipeline and waits for the engine loop in one of
anyio's worker threads (``claif_cod/transport/other_loops.py``); under asyncio it takes claif_cod's
way past the pipeline.  One in-process client answers both: each round, in a random order, a turn
of each kind runs in a fresh ``asyncio.run`` and in a fresh ``trio.run`` (each loop's own
conversation, restarted past 20 messages), timed inside the loop from ``create()`` to the reply
(to the first text of a stream).  Paired medians with 95% intervals.

Run: ``python bench/trio_turns.py [--turns 100] [--one-ca]``  (needs trio: ``pip install trio``)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from async_turns import Chat, first_token, paired, turn
from bench_common import model_server_process, one_ca_store, private_home, round_orders, run_header

from claif_cod import AsyncCodexClient
from claif_cod.testing import write_codex_home

Kind = Callable[[AsyncCodexClient, Chat], Awaitable[float]]
KINDS: dict[str, Kind] = {"turn": turn, "first token": first_token}


def timed(loop: str, kind: Kind, client: AsyncCodexClient, chat: Chat) -> float:
    if loop == "asyncio":
        return asyncio.run(kind(client, chat))  # type: ignore[arg-type]
    took: float = trio.run(kind, client, chat)
    return took


def compare(client: AsyncCodexClient, turns: int) -> list[str]:
    steps = [(kind, loop) for kind in KINDS for loop in ("trio", "asyncio")]
    chats = {step: Chat(" ".join(step)) for step in steps}
    samples: dict[tuple[str, str], list[float]] = {step: [] for step in steps}
    orders = round_orders(steps)
    for round_ in range(turns + 2):  # two untimed rounds: Codex and each path warm
        for kind, loop in next(orders):
            took = timed(loop, KINDS[kind], client, chats[(kind, loop)])
            if round_ >= 2:
                samples[(kind, loop)].append(took)
    return [
        paired(kind, ("trio", samples[(kind, "trio")]), ("asyncio", samples[(kind, "asyncio")]), width=12)
        for kind in KINDS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100, help="timed turns per kind and loop (default 100)")
    parser.add_argument("--one-ca", action="store_true", help="Codex trusts one certificate (see floor_bench.py)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="claif-cod-trio-") as scratch, model_server_process() as (model_url, _):
        root = Path(scratch)
        private_home(root)
        if args.one_ca:
            one_ca_store(root)
        os.environ["CODEX_HOME"] = str(write_codex_home(root / "codex-home", model_url))
        workdir = root / "work"
        workdir.mkdir()
        client = AsyncCodexClient(daemon="off", model="o4-mini", working_dir=workdir)
        start = time.perf_counter()
        lines = compare(client, args.turns)
        took = time.perf_counter() - start
        asyncio.run(client.close())
    store = "one certificate" if args.one_ca else "the system's"
    what = f"{args.turns} timed turns per kind and loop, {took:.0f} s; Codex's trust store: {store}"
    print(run_header(load_start, what))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
