"""Warm turns against the floor, as the history grows: raw ephemeral thread, in-process, daemon, HTTP, exec.

The floor is what a careful hand-written client gets: a warm ``codex app-server`` driven directly
(claif_cod's ``AppServer``, timed inside its own event loop) on an **ephemeral** thread seeded with
the same history.  For each history size (10 to 200 messages, and 10 messages one of which is
100 KB) every row takes one turn per round, interleaved, so load on the shared machine falls on
every row alike:

``raw``                  the floor: ``turn/start`` → ``turn/completed`` (its first delta is the TTFT floor)
``raw, same process``    the same driven on the in-process client's own Codex process and event loop:
                         Codex processes differ by up to ~0.7 ms a turn, so ``in-process`` is also
                         given against this floor (``in-process - same process``), where only the
                         client differs
``raw persisted``        the same on a persisted thread (``ephemeral: false``) in another app-server (its
                         writes would slow the floor's turns): what Codex's rollout costs
``in-process``           ``CodexClient(daemon="off")``, the whole history re-sent each turn (+ a streamed twin)
``in-process async``     ``AsyncCodexClient(daemon="off")`` the same, awaited on one long-lived asyncio loop of the
                         benchmark's main thread (as an agent library's), timed inside it (+ a streamed twin);
                         its floor ``raw, async's process`` drives its own Codex process, as ``raw, same
                         process`` does the sync client's
``daemon``               ``CodexClient(daemon="require")`` through claif-codd's socket (+ a streamed twin)
``daemon, lean socket``  the same socket, the same Codex options, driven by a lean blocking client in the
                         caller's thread (``lean_socket.py``; + a streamed twin): ``daemon - lean`` is
                         what the client library adds (its thread hops, its per-request work, openai's
                         objects)
``daemon HTTP``          claif-codd's ``--http`` endpoint, posted to by a lean client (``httpx``, the body
                         encoded once; + a streamed twin reading the SSE).  The ``openai`` Python SDK
                         would add its own per-message ``maybe_transform`` (~0.15 ms a message), a
                         client cost ``CodexClient`` avoids and this row leaves out
``in-process session``   ``session_id=``: only the new message is sent; the thread is persisted
``daemon session``       the same through the daemon
``codex exec``           ``codex exec --json`` spawned per turn

Round 0 of each size is untimed (it seeds every thread).  The rows take their turns in a new random
order every round (``bench_common.round_orders``), so that work left behind after a turn (a
persisted thread's writes) falls on every row alike.  Besides each row's median against the
floor's, the ``paired`` lines give the median of the per-round differences (``in-process`` against
``raw, same process``, ``daemon`` against ``raw``): both turns were taken in the same round, so the
machine's drift over the run cancels out of them; below each, its 95% bootstrap interval says
whether a goal is met or only looks so in this run (20 turns leave it ±1-2 ms wide; 100 narrow it).
Their last column, ``all sizes``, takes every size's rounds together: the overhead as a whole, with
an interval narrower than a size's.
``--rows`` runs only some rows besides the floor (``codex exec`` alone takes half a round), so that a
run can afford 100 turns per row.  ``--one-ca`` gives every Codex a trust store of one certificate:
Codex loads its whole store three times a turn, half its time and much of the variance that
widens those intervals (bench/README.md, "Codex's CA store"); the offline model needs none.
``--pace MS`` has the offline model wait MS ms before each streamed word, as a real model streams
(by default it sends the whole answer in one burst, which our stream then handles while it hands
out the first chunk); ``codex exec`` asks without it, so its ratios then compare unequal turns.
Nothing asserts on time; every reply is checked (``[turn K]`` counts the user messages the Codex
thread holds, so a lost history shows).
Run: ``python bench/floor_bench.py [--turns N] [--sizes 10,50,100,200] [--pace MS] [--rows ...] [--one-ca]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import codex_cli_bin
import msgspec
import openai
from bench_common import (
    at_least_two,
    codex_version,
    elapsed_ms,
    machine,
    model_server_process,
    one_ca_store,
    private_home,
    round_orders,
)
from floor_report import (
    DAEMON,
    DAEMON_SESSION,
    EXEC,
    HTTP,
    LEAN,
    LOCAL,
    LOCAL_ASYNC,
    LOCAL_SESSION,
    RAW,
    RAW_PERSISTED,
    RAW_SHARED,
    RAW_SHARED_ASYNC,
    ROW_NAMES,
    Phase,
    render,
)
from lean_socket import LeanSocket
from offline_chat import MODEL, StreamedText, exec_turn, expect_reply, progress, streamed
from openai.types.chat import ChatCompletionMessageParam
from private_daemon import Daemon, sigterm_as_interrupt
from raw_app_server import RawAppServer

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.engine import wire
from claif_cod.testing import write_codex_home
from claif_cod.transport.daemon_backend import codex_options

BIG = 100 * 1024


@dataclass
class Chat:
    """A conversation prefilled with ``size`` messages (user/assistant pairs), growing one turn per round."""

    topic: str
    size: int
    big: bool
    pace_ms: int = 0
    """The offline model's wait before each streamed word (its ``[[slow:N]]`` marker); 0: the whole
    answer in one burst, which a real model never sends."""
    messages: list[ChatCompletionMessageParam] = field(default_factory=list)
    turns: int = 0
    question: str = ""

    def __post_init__(self) -> None:
        for i in range(1, self.size // 2 + 1):
            text = f"{self.topic} message {i}"
            if self.big and i == 1:
                text += " " + "x" * BIG
            self.messages += [{"role": "user", "content": text}, {"role": "assistant", "content": f"reply {i}"}]
        self.turns = self.size // 2

    def seed(self) -> list[wire.MessageItem]:
        return [
            wire.MessageItem(
                role="user" if m["role"] == "user" else "assistant",
                content=[
                    wire.ContentPart(
                        type="input_text" if m["role"] == "user" else "output_text", text=str(m["content"])
                    )
                ],
            )
            for m in self.messages
        ]

    def ask(self) -> str:
        """The next user message, as sent (with the pace marker, which the model does not echo)."""
        self.turns += 1
        self.question = f"{self.topic} message {self.turns}"
        text = f"{self.question} [[slow:{self.pace_ms}]]" if self.pace_ms else self.question
        self.messages.append({"role": "user", "content": text})
        return text

    def answer(self, reply: str) -> None:
        expect_reply(reply, self.question, self.turns)
        self.messages.append({"role": "assistant", "content": reply})


def turn(client: openai.OpenAI, chat: Chat, *, session: bool = False) -> float:
    chat.ask()
    messages = chat.messages if not session or chat.turns == chat.size // 2 + 1 else chat.messages[-1:]
    start = time.perf_counter()
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    took = elapsed_ms(start)
    chat.answer(completion.choices[0].message.content or "")
    return took


def first_token(client: openai.OpenAI, chat: Chat) -> float:
    chat.ask()
    reply, first, _, _ = streamed(client, chat.messages)
    chat.answer(reply)
    return first


async def async_turn(client: openai.AsyncOpenAI, chat: Chat) -> float:
    chat.ask()
    start = time.perf_counter()
    completion = await client.chat.completions.create(model=MODEL, messages=chat.messages)
    took = elapsed_ms(start)
    chat.answer(completion.choices[0].message.content or "")
    return took


async def async_first_token(client: openai.AsyncOpenAI, chat: Chat) -> float:
    chat.ask()
    text = StreamedText()
    start = time.perf_counter()
    stream = await client.chat.completions.create(model=MODEL, messages=chat.messages, stream=True)
    async with stream:
        async for chunk in stream:
            text.take(chunk)
    assert text.first is not None
    chat.answer("".join(text.parts))
    return (text.first - start) * 1000


class LeanHttp:
    """What a careful hand-written HTTP client does: one JSON encode, one POST on a kept-alive
    connection (the standard library's ``http.client``), one decode."""

    def __init__(self, base_url: str, workdir: Path) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.path = url.path.rstrip("/") + "/chat/completions"
        self.connection = http.client.HTTPConnection(url.netloc, timeout=60)
        self.headers = {"content-type": "application/json", "X-Claif-Cod-Working-Dir": str(workdir)}

    def _post(self, body: dict[str, Any]) -> http.client.HTTPResponse:
        self.connection.request("POST", self.path, body=msgspec.json.encode(body), headers=self.headers)
        response = self.connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:500]!r}")
        return response

    def turn(self, chat: Chat) -> float:
        chat.ask()
        start = time.perf_counter()
        response = self._post({"model": MODEL, "messages": chat.messages})
        reply = msgspec.json.decode(response.read())["choices"][0]["message"]["content"]
        took = elapsed_ms(start)
        chat.answer(reply)
        return took

    def first_token(self, chat: Chat) -> float:
        chat.ask()
        first: float | None = None
        parts: list[str] = []
        start = time.perf_counter()
        response = self._post({"model": MODEL, "messages": chat.messages, "stream": True})
        for line in response:
            if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                continue
            choices = msgspec.json.decode(line[6:])["choices"]
            content = choices[0]["delta"].get("content") if choices else None
            if content:
                first = elapsed_ms(start) if first is None else first
                parts.append(content)
        assert first is not None
        chat.answer("".join(parts))
        return first

    def close(self) -> None:
        self.connection.close()


def raw_turn(raw: RawAppServer, thread_id: str, chat: Chat) -> tuple[float, float]:
    text = chat.ask()
    result = raw.turn(thread_id, text)
    chat.answer(result.reply)
    return result.total_ms, result.first_delta_ms


def run_phase(label: str, size: int, big: bool, rounds: int, ctx: dict[str, Any]) -> Phase:
    phase = Phase(label)
    raw: RawAppServer = ctx["raw"]
    chats = {
        name: Chat(f"{label} {name}", size, big, ctx["pace_ms"])
        for name in (
            "raw",
            "shared",
            "persisted",
            "raw first",
            "shared first",
            "local",
            "daemon",
            "lean",
            "http",
            "local first",
            "daemon first",
            "lean first",
            "http first",
            "local session",
            "daemon session",
            "async",
            "async first",
            "shared async",
            "shared async first",
        )
    }
    raw_thread = raw.new_thread(seed=chats["raw"].seed())
    first_thread = raw.new_thread(seed=chats["raw first"].seed())
    shared: RawAppServer = ctx["shared"]
    shared_thread = shared.new_thread(seed=chats["shared"].seed())
    shared_first = shared.new_thread(seed=chats["shared first"].seed())
    caller: asyncio.AbstractEventLoop | None = ctx["caller_loop"]
    local_async: AsyncCodexClient | None = ctx["local_async"]
    shared_async: RawAppServer | None = ctx["shared_async"]
    if shared_async is not None:
        async_thread = shared_async.new_thread(seed=chats["shared async"].seed())
        async_first = shared_async.new_thread(seed=chats["shared async first"].seed())
    persisting: RawAppServer = ctx["persisting"]
    persisted_thread = persisting.new_thread(ephemeral=False, seed=chats["persisted"].seed())
    sessions = {
        LOCAL_SESSION: CodexClient(working_dir=ctx["workdir"], daemon="off", session_id=f"{label} local"),
        DAEMON_SESSION: CodexClient(working_dir=ctx["workdir"], daemon="require", session_id=f"{label} daemon"),
    }
    try:
        http: LeanHttp = ctx["http"]
        lean: LeanSocket = ctx["lean"]
        steps: list[tuple[str, str, Callable[[], float]]] = [
            ("t", EXEC, lambda: exec_turn(ctx["codex"], ctx["workdir"], ctx["env"])),
            ("t", RAW, lambda: raw_turn(raw, raw_thread, chats["raw"])[0]),
            ("t", RAW_PERSISTED, lambda: raw_turn(persisting, persisted_thread, chats["persisted"])[0]),
            ("f", RAW, lambda: raw_turn(raw, first_thread, chats["raw first"])[1]),
            ("t", RAW_SHARED, lambda: raw_turn(shared, shared_thread, chats["shared"])[0]),
            ("f", RAW_SHARED, lambda: raw_turn(shared, shared_first, chats["shared first"])[1]),
            ("t", LOCAL, lambda: turn(ctx["local"], chats["local"])),
            ("t", DAEMON, lambda: turn(ctx["daemon"], chats["daemon"])),
            ("t", LEAN, lambda: lean.turn(chats["lean"])),
            ("t", HTTP, lambda: http.turn(chats["http"])),
            ("f", LOCAL, lambda: first_token(ctx["local"], chats["local first"])),
            ("f", DAEMON, lambda: first_token(ctx["daemon"], chats["daemon first"])),
            ("f", LEAN, lambda: lean.first_token(chats["lean first"])),
            ("f", HTTP, lambda: http.first_token(chats["http first"])),
            ("t", LOCAL_SESSION, lambda: turn(sessions[LOCAL_SESSION], chats["local session"], session=True)),
        ]
        if shared_async is not None and caller is not None and local_async is not None:  # the async rows asked for
            steps += [
                ("t", RAW_SHARED_ASYNC, lambda: raw_turn(shared_async, async_thread, chats["shared async"])[0]),
                ("f", RAW_SHARED_ASYNC, lambda: raw_turn(shared_async, async_first, chats["shared async first"])[1]),
                ("t", LOCAL_ASYNC, lambda: caller.run_until_complete(async_turn(local_async, chats["async"]))),
                (
                    "f",
                    LOCAL_ASYNC,
                    lambda: caller.run_until_complete(async_first_token(local_async, chats["async first"])),
                ),
            ]
        steps.append(
            ("t", DAEMON_SESSION, lambda: turn(sessions[DAEMON_SESSION], chats["daemon session"], session=True))
        )
        steps = [step for step in steps if step[1] in ctx["rows"]]
        for round_no, order in zip(range(rounds + 1), round_orders(steps), strict=False):
            progress(f"{label}: round {round_no}/{rounds}")
            t: dict[str, float] = {}
            f: dict[str, float] = {}
            for kind, row, step in order:
                (t if kind == "t" else f)[row] = step()
            if round_no == 0:
                continue  # seeds every thread
            for row, took in t.items():
                phase.turns[row].append(took)
            for row, took in f.items():
                phase.firsts[row].append(took)
    finally:
        for client in sessions.values():
            client.close()
    return phase


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=20, help="timed turns per row and size (default 20)")
    parser.add_argument("--sizes", default="10,50,100,200", help="history sizes in messages (default 10,50,100,200)")
    parser.add_argument("--no-big", action="store_true", help="skip the 10-message history with a 100 KB message")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples to PATH")
    parser.add_argument(
        "--pace", type=int, default=0, metavar="MS", help="the offline model waits MS ms before each streamed word"
    )
    parser.add_argument(
        "--one-ca",
        action="store_true",
        help="Codex trusts one certificate: half its turn's work and variance, the same for every row",
    )
    parser.add_argument(
        "--rows",
        default=",".join(ROW_NAMES),
        help=f"rows to run besides the raw floor, of {','.join(ROW_NAMES)} (default: all)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.rows.split(",")) - set(ROW_NAMES)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    codex = str(codex_cli_bin.bundled_codex_path())
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    phases: list[Phase] = []
    with (
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="claif-cod-floor-bench-") as scratch,
        model_server_process() as (model_url, _),
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        home = write_codex_home(root / "codex-home", model_url)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        os.environ.pop("CLAIF_COD_AUTOSTART", None)
        private_home(root)
        if args.one_ca:
            one_ca_store(root)
        os.environ["CODEX_HOME"] = str(home)
        os.environ["CLAIF_COD_SOCKET"] = str(run_dir / "codd.sock")
        env = {**os.environ}
        workdir = root / "work"
        workdir.mkdir()
        daemon = Daemon(socket=run_dir / "codd.sock", state_dir=root / "state", log=root / "codd.log", env=env)
        cleanup.callback(daemon.stop)
        cleanup.push(daemon.show_log_on_error)
        daemon.start()
        raw = RawAppServer(codex, workdir, env)
        cleanup.callback(raw.close)
        raw.start()
        # Persisted threads in a process of their own: their writes slowed the floor's turns by ~1 ms.
        persisting = RawAppServer(codex, workdir, env)
        cleanup.callback(persisting.close)
        persisting.start()
        local = cleanup.enter_context(CodexClient(working_dir=workdir, daemon="off"))
        local.models.list()  # starts its Codex process, which the same-process floor shares
        shared = RawAppServer.attached(local, workdir)
        rows = {RAW, *(ROW_NAMES[name] for name in args.rows.split(","))}
        caller_loop = local_async = shared_async = None
        if LOCAL_ASYNC in rows:
            rows.add(RAW_SHARED_ASYNC)
            caller_loop = asyncio.new_event_loop()  # asyncio's own, as most agent libraries run
            cleanup.callback(caller_loop.close)
            local_async = AsyncCodexClient(working_dir=workdir, daemon="off")
            cleanup.callback(caller_loop.run_until_complete, local_async.close())
            caller_loop.run_until_complete(local_async.models.list())  # starts its Codex process
            shared_async = RawAppServer.attached(local_async, workdir)
        via_daemon = cleanup.enter_context(CodexClient(working_dir=workdir, daemon="require"))
        http = LeanHttp(f"{daemon.status()['http']}/v1", workdir)
        cleanup.callback(http.close)
        lean = LeanSocket(run_dir / "codd.sock", codex_options(via_daemon._core.options))
        cleanup.callback(lean.close)
        ctx = {
            "raw": raw,
            "persisting": persisting,
            "shared": shared,
            "local": local,
            "daemon": via_daemon,
            "http": http,
            "lean": lean,
            "codex": codex,
            "workdir": workdir,
            "env": env,
            "pace_ms": args.pace,
            "rows": rows,
            "caller_loop": caller_loop,
            "local_async": local_async,
            "shared_async": shared_async,
        }
        plan = [(f"{n} messages", n, False) for n in sizes]
        if not args.no_big:
            plan.append(("10 incl. 100 KB", 10, True))
        for label, size, big in plan:
            phases.append(run_phase(label, size, big, args.turns, ctx))
        progress("")
    meta = {
        "codex_version": codex_version(codex),
        **machine(),
        "turns": args.turns,
        "pace_ms": args.pace,
        "one_ca": args.one_ca,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "wall_s": time.perf_counter() - started,
    }
    print(render(phases, meta))
    if args.json is not None:
        args.json.write_text(json.dumps({"meta": meta, "phases": [vars(p) for p in phases]}, indent=1) + "\n")
        print(f"\nRaw samples written to {args.json}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the daemon and every Codex process were stopped", file=sys.stderr)
        sys.exit(130)
