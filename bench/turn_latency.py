"""Per-turn latency: ``codex exec`` per turn versus claif_cod's warm ``codex app-server`` engine.

What is measured, against the offline test model (``claif_cod.testing.ModelServer``, in a
process of its own, which answers ``Echo: <text>`` word by word), so only Codex and claif_cod are
being timed:

``codex exec``
    ``codex exec --json --skip-git-repo-check hello`` spawned once per turn, from spawn to
    exit. This is what a wrapper that shells out to the CLI pays for every request.
``engine cold``
    A new ``CodexClient(daemon="off")`` per sample, timing its first
    ``chat.completions.create()``. That includes spawning ``codex app-server``, the
    initialize handshake, ``thread/start`` and the turn itself.
``engine warm``
    One client and one growing conversation: each request resends the history with the
    previous assistant reply and a new user message, so the engine continues its warm thread
    and sends Codex only the new message. Every ``create()`` after the first is timed.
``engine stream``
    The same on a second conversation with ``stream=True``: time to the first content chunk
    and to the end of the stream.
``raw app-server``
    The floor: a warm ``codex app-server`` driven directly (``RawAppServer`` from
    ``daemon_bench.py``) on an ephemeral thread, timed inside its own event loop from
    ``turn/start`` to ``turn/completed``; its first ``item/agentMessage/delta`` is the
    first-token floor.

Why ratios, and why one run: absolute milliseconds depend on the machine and on what else
it is doing, so every mode is measured side by side in the same process, interleaved round
by round (one sample of each mode per round), and reported as a ratio to ``codex exec``.
Drift during the run (CPU frequency, page cache, a noisy neighbour) then hits every mode
alike. Round 0 is an untimed warm-up: it fills the page cache, lets claif_cod probe the
binary once (a per-process cost, shown separately) and starts both conversations.

Nothing here asserts on time. The only checks are that each turn got the model's reply,
and the table reports how many warm turns really reused their thread (the model server
reports a cached prompt prefix only for a request on the same Codex thread).

Run it with ``python bench/turn_latency.py [--turns N] [--json PATH]``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import codex_cli_bin
from bench_common import (
    at_least_two,
    codex_version,
    elapsed_ms,
    machine,
    model_server_process,
    private_home,
    round_orders,
)
from offline_chat import MODEL, PROMPT, Conversation, exec_turn, streamed
from raw_app_server import RawAppServer

from claif_cod import CodexClient
from claif_cod.testing import write_codex_home

EXEC = "codex exec"
COLD = "engine cold first turn"
WARM = "engine warm turn"
FIRST_CHUNK = "engine warm stream: first chunk"
STREAM_END = "engine warm stream: complete"
RAW = "raw app-server warm turn"
RAW_FIRST = "raw app-server: first delta"
MODES = (EXEC, COLD, WARM, FIRST_CHUNK, STREAM_END, RAW, RAW_FIRST)


@dataclass
class Bench:
    """Everything one run needs: the binary, a scratch directory and the Codex environment."""

    codex: str
    workdir: Path
    env: dict[str, str]
    samples: dict[str, list[float]] = field(default_factory=lambda: {mode: [] for mode in MODES})
    warmup: dict[str, float] = field(default_factory=dict)
    warm_hits: int = 0
    stream_hits: int = 0


@dataclass(frozen=True)
class Summary:
    median: float
    p90: float
    min: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1]
        return cls(median=statistics.median(samples), p90=p90, min=min(samples))


# --- the four modes, one sample each ------------------------------------------------------


def new_client(bench: Bench) -> CodexClient:
    """An in-process client (no daemon) on the same binary that ``codex exec`` runs."""
    return CodexClient(working_dir=bench.workdir, codex_path=bench.codex, daemon="off")


def cold_turn(bench: Bench) -> float:
    """A new client's first ``create()``, which spawns its ``codex app-server``."""
    client = new_client(bench)
    try:
        start = time.perf_counter()
        completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}])
        took = elapsed_ms(start)
    finally:
        client.close()
    expect_reply(completion.choices[0].message.content or "", f"Echo: {PROMPT}")
    return took


def warm_turn(client: CodexClient, conversation: Conversation) -> tuple[float, bool]:
    """One more turn of ``conversation``; returns milliseconds and whether Codex reused the thread."""
    messages = conversation.ask()
    start = time.perf_counter()
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    took = elapsed_ms(start)
    reply = completion.choices[0].message.content or ""
    expect_reply(reply, f"Echo: {conversation.topic} message")
    conversation.answer(reply)
    usage = completion.usage
    return took, bool(usage and usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens)


def stream_turn(client: CodexClient, conversation: Conversation) -> tuple[float, float, bool]:
    """One streamed turn; milliseconds to the first content chunk and to the end, and thread reuse."""
    reply, first, end, cached = streamed(client, conversation.ask())
    expect_reply(reply, f"Echo: {conversation.topic} message")
    conversation.answer(reply)
    return first, end, cached


def expect_reply(reply: str, expected: str) -> None:
    if expected not in reply:
        raise RuntimeError(f"unexpected reply {reply!r}; wanted one containing {expected!r}")


# --- the run ---------------------------------------------------------------------------------


Step = tuple[dict[str, float], dict[str, bool]]
"""One step's samples by mode, and whether each reused its Codex thread."""


def run_rounds(bench: Bench, turns: int) -> None:
    """Round 0 warms up; rounds 1..turns take one sample of every mode, interleaved in a new random
    order each round."""
    client = new_client(bench)
    warm, streamed = Conversation("plain"), Conversation("streamed")
    raw = RawAppServer(bench.codex, bench.workdir, bench.env)
    try:
        raw.start()
        raw_thread = raw.new_thread()
        raw_turns = 0

        def warm_step() -> Step:
            took, hit = warm_turn(client, warm)
            return {WARM: took}, {WARM: hit}

        def stream_step() -> Step:
            first, end, hit = stream_turn(client, streamed)
            return {FIRST_CHUNK: first, STREAM_END: end}, {FIRST_CHUNK: hit}

        def raw_step() -> Step:
            nonlocal raw_turns
            raw_turns += 1
            result = raw.turn(raw_thread, f"raw message {raw_turns}")
            expect_reply(result.reply, f"Echo: raw message {raw_turns}")
            return {RAW: result.total_ms, RAW_FIRST: result.first_delta_ms}, {}

        steps: list[Callable[[], Step]] = [
            lambda: ({EXEC: exec_turn(bench.codex, bench.workdir, bench.env)}, {}),
            lambda: ({COLD: cold_turn(bench)}, {}),
            warm_step,
            stream_step,
            raw_step,
        ]
        # Round 0 in the listed order: its cold client is the process's first, which probes the binary.
        orders = itertools.chain([steps], round_orders(steps))
        for round_no, order in zip(range(turns + 1), orders, strict=False):
            progress(f"round {round_no}/{turns}")
            samples: dict[str, float] = {}
            hits: dict[str, bool] = {}
            for step in order:
                took, hit = step()
                samples |= took
                hits |= hit
            if round_no == 0:
                bench.warmup = samples
                continue
            bench.warm_hits += hits[WARM]
            bench.stream_hits += hits[FIRST_CHUNK]
            for mode, took_ms in samples.items():
                bench.samples[mode].append(took_ms)
    finally:
        client.close()
        raw.close()
        progress("")


def progress(text: str) -> None:
    """A one-line status on a terminal's stderr; nothing when stderr is a file or a pipe."""
    if sys.stderr.isatty():
        print(f"\r{text:<20}", end="\r", file=sys.stderr, flush=True)


def render(bench: Bench, meta: dict[str, Any], summaries: dict[str, Summary]) -> str:
    baseline = summaries[EXEC].median
    lines = [
        f"Codex:   {meta['codex_version']}  ({meta['codex_path']})",
        f"Machine: {meta['platform']}, {meta['cpu_count']} CPUs, Python {meta['python']}, "
        f"claif_cod {meta['claif_cod']}",
        f"Turns:   {meta['turns']} per mode, interleaved; offline model {MODEL}; total {meta['wall_s']:.1f} s",
        "",
        f"{'mode':<34}{'median ms':>11}{'p90 ms':>10}{'min ms':>10}{'median / exec':>15}",
        "-" * 80,
    ]
    for mode, summary in summaries.items():
        lines.append(
            f"{mode:<34}{summary.median:>11.1f}{summary.p90:>10.1f}{summary.min:>10.1f}"
            f"{summary.median / baseline:>15.3f}"
        )
    turns = meta["turns"]
    lines += [
        "",
        f"Warm thread reused (cached prompt prefix): {bench.warm_hits}/{turns} warm turns, "
        f"{bench.stream_hits}/{turns} streamed turns.",
        f"Warm-up, not in the table: first client in this process {bench.warmup[COLD]:.1f} ms "
        f"(includes probing the binary once), first codex exec {bench.warmup[EXEC]:.1f} ms.",
    ]
    return "\n".join(lines)


def write_json(path: Path, bench: Bench, meta: dict[str, Any], summaries: dict[str, Summary]) -> None:
    payload = {
        "meta": meta,
        "unit": "ms",
        "samples": bench.samples,
        "warmup": bench.warmup,
        "summary": {mode: vars(s) for mode, s in summaries.items()},
        "warm_thread_reused": {"warm": bench.warm_hits, "stream": bench.stream_hits},
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=20, help="timed turns per mode (default 20)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples to PATH")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    codex = str(codex_cli_bin.bundled_codex_path())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="claif-cod-bench-") as scratch, model_server_process() as (model_url, _):
        root = Path(scratch)
        home = write_codex_home(root / "codex-home", model_url)
        private_home(root)
        os.environ["CODEX_HOME"] = str(home)  # clients pass their environment on to Codex
        workdir = root / "work"
        workdir.mkdir()
        bench = Bench(codex=codex, workdir=workdir, env={**os.environ, "CODEX_HOME": str(home)})
        run_rounds(bench, args.turns)
    meta = {
        "codex_version": codex_version(codex),
        "codex_path": codex,
        **machine(),
        "turns": args.turns,
        "wall_s": time.perf_counter() - started,
    }
    summaries = {mode: Summary.of(samples) for mode, samples in bench.samples.items()}
    print(render(bench, meta, summaries))
    if args.json is not None:
        write_json(args.json, bench, meta, summaries)
        print(f"\nRaw samples written to {args.json}")


if __name__ == "__main__":
    main()
