"""Where a warm in-process turn's time goes, stage by stage, beside the raw floor.

Each round takes one raw turn (``RawAppServer``: an ephemeral thread driven directly, on the
client's own Codex process and event loop, so that only the client differs) and one
``CodexClient(daemon="off")`` turn, alternating which goes first.  The client's turn is cut at
points observed by wrapping a few functions of this process (nothing in claif_cod is changed):

``to the engine``    ``create()`` called → the engine loop starts the dispatch; finer: → the task handed
                     to the engine loop (openai's arguments checked and encoded), → the loop
                     woken, → the dispatch begun
``to turn/start``    → ``turn/start`` is written to Codex; finer: → the request parsed, → the warm
                     thread found by the history's hash, → ``turn/start`` sent
``codex``            → ``turn/completed`` is read (what the raw floor measures, give or take)
``to reply``         → the reply body is ready on the loop thread
``hop out``          → the caller's thread has the reply
``openai object``    → ``create()`` returns openai's ``ChatCompletion``, built from it as openai's
                     pipeline builds it (a plain ``create()`` sends no HTTP request through
                     openai: see ``claif_cod/fast_create.py``)

With ``--stream`` the turns are streamed and cut up to the first content chunk: Codex's stage ends
at its first delta; then the first chunk on the engine loop, its events started and the hop back
with openai's ``Stream`` (made on the engine loop while Codex worked), ``create()`` returning it,
and the chunk coming out of it.  ``--profile`` also runs cProfile in both
threads (the caller's and the engine loop's) and prints the functions with the most internal
time in each.  Nothing asserts on time.
``--big`` puts a 100 KB message in each history.
Run: ``python bench/turn_stages.py [--turns 40] [--sizes 10,200] [--stream] [--big] [--profile] [--one-ca]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench_common import at_least_two, elapsed_ms, model_server_process, offline_workdir, one_ca_store
from floor_bench import Chat
from offline_chat import MODEL, StreamedText
from raw_app_server import RawAppServer

from claif_cod import CodexClient
from claif_cod.engine import appserver, threads
from claif_cod.openai_compat import service
from claif_cod.transport import loop_thread, transport_core

STAGES = ("to the engine", "to turn/start", "codex", "to reply", "hop out", "openai object")
STREAM_STAGES = (
    "to the engine",
    "to turn/start",
    "codex",
    "to 1st chunk",
    "hop out",
    "create() returns",
    "1st chunk out",
)
FINE_STAGES = (
    ("to the engine", ("hand-over", "loop woken", "dispatch begun")),
    ("to turn/start", ("request parsed", "warm thread found", "turn/start sent")),
)
FINE_KEYS = ("hand-over", "begin", "loop", "parsed", "thread found", "turn/start")
"""The marks that cut ``to the engine`` and ``to turn/start`` finer, in order."""
marks: dict[str, float] = {}


def _mark_around(owner: Any, name: str, before: str, after: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        marks[before] = time.perf_counter()
        result = original(*args, **kwargs)
        marks[after] = time.perf_counter()
        return result

    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        marks[before] = time.perf_counter()
        result = await original(*args, **kwargs)
        marks[after] = time.perf_counter()
        return result

    setattr(owner, name, async_wrapper if asyncio.iscoroutinefunction(original) else wrapper)


def instrument() -> None:
    _mark_around(transport_core.TransportCore, "answer", "answer", "settled")
    _mark_around(transport_core.TransportCore, "dispatch", "loop", "loop done")
    request = appserver.AppServer.request

    async def timed_request(self: appserver.AppServer, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "turn/start":
            marks["turn/start"] = time.perf_counter()
        return await request(self, method, *args, **kwargs)

    dispatch = appserver.AppServer._dispatch

    def timed_dispatch(self: appserver.AppServer, line: bytes) -> None:
        if b'"turn/completed"' in line:
            marks["turn/completed"] = time.perf_counter()
        elif b'"item/agentMessage/delta"' in line and "delta" not in marks:
            marks["delta"] = time.perf_counter()
        dispatch(self, line)

    appserver.AppServer.request = timed_request  # type: ignore[method-assign]
    appserver.AppServer._dispatch = timed_dispatch  # type: ignore[method-assign]
    _instrument_fine()


def _instrument_fine() -> None:
    """The marks of :data:`FINE_KEYS` (each turn's first: an early dispatch hands over once)."""
    start_task = loop_thread.LoopThread._start

    def timed_start(self: loop_thread.LoopThread, start: Any, *args: Any) -> Any:
        marks.setdefault("hand-over", time.perf_counter())

        def begin() -> Any:
            marks.setdefault("begin", time.perf_counter())
            return start()

        return start_task(self, begin, *args)

    parse = service.parse_chat_request  # type: ignore[attr-defined]

    def timed_parse(*args: Any, **kwargs: Any) -> Any:
        parsed = parse(*args, **kwargs)
        marks.setdefault("parsed", time.perf_counter())
        return parsed

    open_conversation = threads.Threads.open_conversation

    async def timed_open(self: threads.Threads, *args: Any, **kwargs: Any) -> Any:
        found = await open_conversation(self, *args, **kwargs)
        marks.setdefault("thread found", time.perf_counter())
        return found

    loop_thread.LoopThread._start = timed_start  # type: ignore[method-assign,assignment]
    service.parse_chat_request = timed_parse  # type: ignore[attr-defined]
    threads.Threads.open_conversation = timed_open  # type: ignore[method-assign]


def fine_cuts(start: float) -> list[float]:
    cuts = [start, *(marks[k] for k in FINE_KEYS)]
    return [(b - a) * 1000 for a, b in itertools.pairwise(cuts)]


def client_turn(client: CodexClient, chat: Chat) -> tuple[float, list[float], list[float]]:
    chat.ask()
    marks.clear()
    start = time.perf_counter()
    completion = client.chat.completions.create(model=MODEL, messages=chat.messages)
    end = time.perf_counter()
    chat.answer(completion.choices[0].message.content or "")
    keys = ("loop", "turn/start", "turn/completed", "loop done", "settled")
    cuts = [start, *(marks[k] for k in keys), end]
    return elapsed_ms(start), [(b - a) * 1000 for a, b in itertools.pairwise(cuts)], fine_cuts(start)


def client_stream_turn(client: CodexClient, chat: Chat) -> tuple[float, list[float], list[float]]:
    chat.ask()
    marks.clear()
    start = time.perf_counter()
    stream = client.chat.completions.create(model=MODEL, messages=chat.messages, stream=True)
    created = time.perf_counter()
    text = StreamedText()
    with stream:
        for chunk in stream:
            text.take(chunk)
    chat.answer("".join(text.parts))
    first = text.first
    assert first is not None
    keys = ("loop", "turn/start", "delta", "loop done", "settled")
    cuts = [start, *(marks[k] for k in keys), created, first]
    return (first - start) * 1000, [(b - a) * 1000 for a, b in itertools.pairwise(cuts)], fine_cuts(start)


def run_size(size: int, turns: int, raw: RawAppServer, client: CodexClient, stream: bool, pace: int, big: bool) -> None:
    raw_chat, our_chat = Chat(f"raw {size}", size, big, pace), Chat(f"ours {size}", size, big, pace)
    thread = raw.new_thread(seed=raw_chat.seed())
    floor: list[float] = []
    ours: list[float] = []
    stages: list[list[float]] = []
    fine: list[list[float]] = []
    for round_no in range(turns + 1):
        ours_first = round_no % 2 == 1
        ours_turn = client_stream_turn if stream else client_turn
        if ours_first:
            total, cut, finer = ours_turn(client, our_chat)
        raw_result = raw.turn(thread, raw_chat.ask())
        raw_chat.answer(raw_result.reply)
        if not ours_first:
            total, cut, finer = ours_turn(client, our_chat)
        if round_no > 0:  # round 0 seeds the threads
            floor.append(raw_result.first_delta_ms if stream else raw_result.total_ms)
            ours.append(total)
            stages.append(cut)
            fine.append(finer)
    m = statistics.median
    what = "first token" if stream else "turn"
    print(
        f"\n{size} messages{' incl. 100 KB' if big else ''} (growing by one turn a round), {turns} turns, {what}: "
        f"raw {m(floor):.2f} ms, "
        f"in-process {m(ours):.2f} ms ({m(ours) - m(floor):+.2f})"
    )
    names = STREAM_STAGES if stream else STAGES
    per_stage = {name: m(samples) for name, samples in zip(names, zip(*stages, strict=True), strict=True)}
    fine_medians = iter([m(samples) for samples in zip(*fine, strict=True)])
    parts = dict(FINE_STAGES)
    for name, value in per_stage.items():
        print(f"  {name:<16} {value:8.3f} ms")
        for part in parts.get(name, ()):
            print(f"    {part:<18} {next(fine_medians):6.3f} ms")
    print(f"  {'all but codex':<16} {sum(v for n, v in per_stage.items() if n != 'codex'):8.3f} ms")


def on_loop(client: CodexClient, coro: Coroutine[Any, Any, None]) -> None:
    client._core.loop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=40)
    parser.add_argument("--sizes", default="10,200")
    parser.add_argument("--profile", action="store_true", help="also cProfile both threads")
    parser.add_argument("--stream", action="store_true", help="streamed turns, cut up to the first content chunk")
    parser.add_argument(
        "--pace", type=int, default=0, metavar="MS", help="the offline model waits MS ms before each streamed word"
    )
    parser.add_argument("--big", action="store_true", help="each history holds a 100 KB message (as floor_bench.py's)")
    parser.add_argument("--one-ca", action="store_true", help="Codex trusts one certificate (as floor_bench.py's)")
    args = parser.parse_args()
    instrument()
    with model_server_process() as (model_url, _), tempfile.TemporaryDirectory(prefix="claif-cod-stages-") as scratch:
        root = Path(scratch)
        if args.one_ca:
            one_ca_store(root)
        workdir = offline_workdir(root, model_url)
        caller, engine = cProfile.Profile(), cProfile.Profile()
        with CodexClient(working_dir=workdir, daemon="off") as client:
            client.models.list()  # starts the engine loop and a Codex process
            raw = RawAppServer.attached(client, workdir)
            if args.profile:
                on_loop(client, _call(engine.enable))
                caller.enable()
            try:
                for size in (int(s) for s in args.sizes.split(",")):
                    run_size(size, args.turns, raw, client, args.stream, args.pace, args.big)
            finally:
                if args.profile:
                    caller.disable()
                    on_loop(client, _call(engine.disable))
    if args.profile:
        for title, profile in (("caller's thread", caller), ("engine loop thread", engine)):
            print(f"\n=== {title}")
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)


async def _call(function: Callable[[], None]) -> None:
    function()


if __name__ == "__main__":
    main()
