"""An async client through the daemon: on its loop's own connection, or through the engine loop.

``AsyncCodexClient(daemon="require")`` sends a loop's requests on a connection of that loop from
the loop's second request on (``claif_cod/transport/loop_daemon.py``).  This runs the same client
both ways, switched per turn (the loop's connection refused for the other half, which then goes
through the engine loop as before), turns interleaved in a random order every round, in one
long-lived loop (a turn, and a stream's first token, on two conversations each) and with a fresh
``asyncio.run`` per turn (where a loop makes one request only).  Paired medians with 95% intervals.

Run: ``python bench/loop_connection.py [--turns 150] [--one-ca]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from async_turns import Chat, first_token, paired, turn
from bench_common import model_server_process, one_ca_store, private_home, round_orders, run_header

from claif_cod import AsyncCodexClient
from claif_cod.testing import write_codex_home
from claif_cod.testing.daemon import start_daemon, stop_daemon
from claif_cod.transport import loop_daemon

_own_connection = [True]
_answer = loop_daemon.LoopDaemon.answer


async def _switched(self: loop_daemon.LoopDaemon, *args: Any, **kwargs: Any) -> Any:
    return await _answer(self, *args, **kwargs) if _own_connection[0] else None


loop_daemon.LoopDaemon.answer = _switched  # type: ignore[method-assign]


async def long_lived(client: AsyncCodexClient, turns: int) -> list[str]:
    kinds: dict[str, Callable[[AsyncCodexClient, Chat], Any]] = {"turn": turn, "first token": first_token}
    chats = {(kind, own): Chat(f"{kind} {own}") for kind in kinds for own in (True, False)}
    samples: dict[tuple[str, bool], list[float]] = {key: [] for key in chats}
    orders = round_orders(list(chats))
    for round_ in range(turns + 2):  # two untimed rounds: the loop's first requests take the engine loop
        for kind, own in next(orders):
            _own_connection[0] = own
            took = await kinds[kind](client, chats[(kind, own)])
            if round_ >= 2:
                samples[(kind, own)].append(took)
    return [
        paired(f"one loop, {kind}", ("own loop", samples[(kind, True)]), ("engine loop", samples[(kind, False)]))
        for kind in kinds
    ]


def per_call(client: AsyncCodexClient, turns: int) -> str:
    chats = {own: Chat(f"per call {own}") for own in (True, False)}
    samples: dict[bool, list[float]] = {True: [], False: []}
    orders = round_orders([True, False])
    for _ in range(turns):
        for own in next(orders):
            _own_connection[0] = own
            start = time.perf_counter()
            asyncio.run(turn(client, chats[own]))
            samples[own].append((time.perf_counter() - start) * 1000)
    return paired("asyncio.run per turn", ("own loop", samples[True]), ("engine loop", samples[False]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=150, help="timed turns per kind and way (default 150)")
    parser.add_argument("--one-ca", action="store_true", help="Codex trusts one certificate (see floor_bench.py)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="claif-cod-loop-connection-") as scratch,
        model_server_process() as (model_url, _),
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        private_home(root)
        if args.one_ca:
            one_ca_store(root)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        os.environ["CODEX_HOME"] = str(write_codex_home(root / "codex-home", model_url))
        os.environ["CLAIF_COD_SOCKET"] = str(run_dir / "codd.sock")
        proc = start_daemon(run_dir / "codd.sock", root / "state", root / "codd.log", dict(os.environ))
        cleanup.callback(stop_daemon, proc)
        workdir = root / "work"
        workdir.mkdir()
        client = AsyncCodexClient(daemon="require", model="o4-mini", working_dir=workdir)
        lines = asyncio.run(long_lived(client, args.turns))
        lines.append(per_call(client, args.turns))
        asyncio.run(client.close())
    store = "one certificate" if args.one_ca else "the system's"
    print(run_header(load_start, f"{args.turns} timed turns per kind and way; Codex's trust store: {store}"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
