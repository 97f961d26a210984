"""The daemon's price: claif-codd against the in-process engine, ``codex exec`` and a bare app-server.

Everything runs in one process against one offline test model (``claif_cod.testing.ModelServer``,
which answers ``Echo: <text>`` word by word) and one ``CODEX_HOME``, so only Codex, claif_cod and
claif-codd are being timed. The script starts its own ``claif-codd serve`` on a private socket
in a temporary directory and always stops it (SIGTERM, then wait) at the end, also on Ctrl-C.

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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import codex_cli_bin
import msgspec
import openai
import uvloop
from bench_common import at_least_two, codex_version, elapsed_ms, machine
from openai.types.chat import ChatCompletionMessageParam

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.engine import wire
from claif_cod.engine.appserver import AppServer, Notification, ProcessExit, RpcErrorReply, ThreadMessage
from claif_cod.testing import ModelServer, write_codex_home
from claif_cod.transport.autostart import answers

T = TypeVar("T")

MODEL = "o4-mini"
PROMPT = "hello"

EXEC = "codex exec"
DAEMON = "daemon warm turn"
HTTP = "daemon HTTP warm turn"
LOCAL = "in-process warm turn"
RAW = "raw app-server warm turn"
DAEMON_FIRST = "daemon stream: first token"
HTTP_FIRST = "daemon HTTP stream: first token"
LOCAL_FIRST = "in-process stream: first token"
RAW_FIRST = "raw app-server: first delta"
TURN_MODES = (EXEC, DAEMON, HTTP, LOCAL, RAW)
FIRST_MODES = (DAEMON_FIRST, HTTP_FIRST, LOCAL_FIRST, RAW_FIRST)
MODES = TURN_MODES + FIRST_MODES

DIRECTORIES = 4
CONVERSATIONS_PER_DIRECTORY = 8
TURNS_PER_CONVERSATION = 5
SESSIONS = 100

TARGET_EXEC_RATIO = 5.0  # codex exec median / daemon median, at least
TARGET_OVERHEAD_MS = 3.0  # daemon median - raw median, at most (warm turn and first token)

DAEMON_START_TIMEOUT_S = 20.0
DAEMON_STOP_TIMEOUT_S = 30.0
MiB = 2**20


@dataclass
class Conversation:
    """A chat history that grows by one user message and one assistant reply per turn.

    The engine finds a warm thread by hashing the history, so two conversations with the
    same text would share threads; ``topic`` keeps their messages apart.
    """

    topic: str
    messages: list[ChatCompletionMessageParam] = field(default_factory=list)
    turns: int = 0

    def next_text(self) -> str:
        self.turns += 1
        return f"{self.topic} message {self.turns}"

    def ask(self) -> list[ChatCompletionMessageParam]:
        self.messages.append({"role": "user", "content": self.next_text()})
        return self.messages

    def answer(self, reply: str) -> None:
        self.messages.append({"role": "assistant", "content": reply})

    def retract(self) -> None:
        """Forget the last question after a failed turn, so the next one continues cleanly."""
        self.messages.pop()
        self.turns -= 1


@dataclass(frozen=True)
class Summary:
    median: float
    p90: float
    p99: float
    min: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1]
        p99 = statistics.quantiles(samples, n=100, method="inclusive")[-1]
        return cls(median=statistics.median(samples), p90=p90, p99=p99, min=min(samples))


def expect_reply(reply: str, text: str, turn: int) -> None:
    """The model answers ``[turn K] Echo: <last user message>`` (no prefix on turn 1), where K counts
    the user messages the Codex thread holds; anything else is a crossed reply or a lost history."""
    expected = f"[turn {turn}] Echo: {text}" if turn > 1 else f"Echo: {text}"
    if reply.strip() != expected:
        raise RuntimeError(f"unexpected reply {reply!r}; wanted {expected!r}")


def progress(text: str) -> None:
    """A one-line status on a terminal's stderr; nothing when stderr is a file or a pipe."""
    if sys.stderr.isatty():
        print(f"\r{text:<40}", end="\r", file=sys.stderr, flush=True)


# --- the daemon -------------------------------------------------------------------------------


@dataclass
class Daemon:
    """``claif-codd serve`` on a private socket; started and stopped like systemd would."""

    socket: Path
    state_dir: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)
    """More ``serve`` options (``--thread-idle-timeout``...)."""
    children: set[int] = field(default_factory=set)
    stop_report: str = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start and wait until the socket accepts; returns milliseconds to readiness."""
        start = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "claif_codd", "serve", "--socket", str(self.socket),
                 "--state-dir", str(self.state_dir), "--http", "127.0.0.1:0", *self.extra_args],
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        while not answers(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"claif-codd did not start:\n{self.log_tail()}")
            time.sleep(0.01)
        return elapsed_ms(start)

    def status(self) -> dict[str, Any]:
        """``claif-codd status --json``, as a user would run it."""
        cli = Path(sys.executable).with_name("claif-codd")
        command = [str(cli)] if cli.exists() else [sys.executable, "-m", "claif_codd"]
        done = subprocess.run([*command, "status", "--json", "--socket", str(self.socket)],
                              capture_output=True, text=True, env=self.env, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"claif-codd status failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
        info: dict[str, Any] = json.loads(done.stdout)
        self.children.update(p["pid"] for p in info["processes"])
        return info

    def stop(self) -> None:
        """SIGTERM, wait; SIGKILL if it hangs. Then kill any Codex child it left behind."""
        if self.proc is None:
            return
        self.children.update(child_pids(self.proc.pid))
        start = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DAEMON_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except BaseException:  # Ctrl-C while waiting: do not leave it running
                self.proc.kill()
                self.proc.wait()
                raise
        took = elapsed_ms(start)
        left = sorted(pid for pid in self.children if alive(pid))
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # each app-server leads its own process group
        self.stop_report = (
            f"claif-codd stopped with SIGTERM: exit code {self.proc.returncode} after {took:.0f} ms; "
            f"Codex children left running: {len(left)} of {len(self.children)}"
            + (f" (killed: {', '.join(map(str, left))})" if left else "")
        )

    def show_log_on_error(self, exc_type: type[BaseException] | None, _exc: object, _tb: object) -> bool:
        """On a failure (not Ctrl-C), print the daemon's last log lines before the temp dir goes."""
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            print(f"claif-codd log ({self.log}), last lines:\n{self.log_tail()}", file=sys.stderr)
        return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def child_pids(parent: int) -> set[int]:
    """Direct children of ``parent``, from /proc."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# --- the floor: a bare app-server ---------------------------------------------------------------


@dataclass(frozen=True)
class RawTurn:
    first_delta_ms: float
    total_ms: float
    reply: str
    cached: bool


async def refuse(method: str, _params: msgspec.Raw) -> object:
    raise RpcErrorReply(-32601, f"the benchmark does not handle {method}")


class RawAppServer:
    """One ``codex app-server`` driven with ``AppServer`` on an event loop of its own (uvloop, as claif_cod's).

    Each turn is timed inside that loop, from just before ``turn/start`` is written to the
    ``turn/completed`` notification, so no thread hop is counted: this is the floor.
    """

    def __init__(self, codex: str, workdir: Path, env: dict[str, str]) -> None:
        self.codex, self.workdir, self.env = codex, workdir, env
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="raw-app-server", daemon=True)
        self._thread.start()
        self.server: AppServer | None = None
        self.queues: dict[str, asyncio.Queue[ThreadMessage]] = {}

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def start(self) -> float:
        start = time.perf_counter()
        self.server = self.run(
            AppServer.start(self.codex, cwd=str(self.workdir), env=self.env, handle_server_request=refuse)
        )
        return elapsed_ms(start)

    def new_thread(self, *, ephemeral: bool = True, seed: Sequence[wire.MessageItem] = ()) -> str:
        """A thread like a careful hand-written client's: ephemeral (Codex writes no rollout), seeded untimed."""
        return self.run(self._new_thread(ephemeral, seed))

    async def _new_thread(self, ephemeral: bool, seed: Sequence[wire.MessageItem]) -> str:
        assert self.server is not None
        params = wire.ThreadStartParams(cwd=str(self.workdir), model=MODEL, ephemeral=ephemeral)
        result = await self.server.request("thread/start", params, wire.ThreadResult)
        thread_id = result.thread.id
        if seed:
            inject = wire.InjectItemsParams(thread_id=thread_id, items=list(seed))
            await self.server.request("thread/inject_items", inject, msgspec.Raw)
        self.queues[thread_id] = self.server.subscribe(thread_id)
        return thread_id

    def turn(self, thread_id: str, text: str) -> RawTurn:
        return self.run(self._turn(thread_id, text))

    async def _turn(self, thread_id: str, text: str) -> RawTurn:
        assert self.server is not None
        queue = self.queues[thread_id]
        start = time.perf_counter()
        params = wire.TurnStartParams(thread_id=thread_id, input=[wire.TextInput(text=text)])
        turn_id = (await self.server.request("turn/start", params, wire.TurnStartResult)).turn.id
        first: float | None = None
        parts: list[str] = []
        cached = False
        while True:
            message = await queue.get()
            if isinstance(message, ProcessExit):
                raise message.error
            assert isinstance(message, Notification)
            if message.method == "item/agentMessage/delta":
                delta = msgspec.json.decode(message.params, type=wire.AgentMessageDelta)
                if delta.turn_id == turn_id:
                    first = elapsed_ms(start) if first is None else first
                    parts.append(delta.delta)
            elif message.method == "thread/tokenUsage/updated":
                usage = msgspec.json.decode(message.params, type=wire.TokenUsageUpdated)
                if usage.turn_id == turn_id and usage.token_usage.last.cached_input_tokens:
                    cached = True
            elif message.method == "turn/completed":
                done = msgspec.json.decode(message.params, type=wire.TurnCompleted)
                if done.turn.id == turn_id:
                    break
        total = elapsed_ms(start)
        if first is None:
            raise RuntimeError(f"raw turn {turn_id} completed without an agentMessage delta")
        return RawTurn(first_delta_ms=first, total_ms=total, reply="".join(parts), cached=cached)

    def close(self) -> None:
        try:
            if self.server is not None:
                self.run(self.server.close(), timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self.loop.close()


# --- 1 and 2: latency, interleaved --------------------------------------------------------------


@dataclass
class Latency:
    """Everything the latency rounds need, and what they measure."""

    codex: str
    workdir: Path
    env: dict[str, str]
    raw: RawAppServer
    http_url: str
    samples: dict[str, list[float]] = field(default_factory=lambda: {mode: [] for mode in MODES})
    warmup: dict[str, float] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)

    def count_reuse(self, mode: str, hit: bool) -> None:
        self.reused[mode] = self.reused.get(mode, 0) + hit


def exec_turn(bench: Latency) -> float:
    """Spawn ``codex exec`` for one turn; milliseconds from spawn to exit."""
    command = [bench.codex, "exec", "--json", "--skip-git-repo-check", PROMPT]
    start = time.perf_counter()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=bench.workdir,
                          env=bench.env, timeout=60, check=False)
    took = elapsed_ms(start)
    if done.returncode != 0 or f"Echo: {PROMPT}" not in done.stdout:
        raise RuntimeError(f"codex exec failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return took


def client_turn(client: openai.OpenAI, conversation: Conversation) -> tuple[float, bool]:
    """One more turn of ``conversation``; returns milliseconds and whether Codex reused the thread."""
    messages = conversation.ask()
    text = conversation.messages[-1]["content"]
    start = time.perf_counter()
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    took = elapsed_ms(start)
    reply = completion.choices[0].message.content or ""
    expect_reply(reply, str(text), conversation.turns)
    conversation.answer(reply)
    usage = completion.usage
    return took, bool(usage and usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens)


def client_stream(client: openai.OpenAI, conversation: Conversation) -> tuple[float, bool]:
    """One streamed turn; milliseconds to the first content chunk, and thread reuse."""
    messages = conversation.ask()
    text = conversation.messages[-1]["content"]
    first: float | None = None
    parts: list[str] = []
    cached = 0
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    with stream:
        for chunk in stream:
            content = chunk.choices[0].delta.content if chunk.choices else None
            if content:
                first = elapsed_ms(start) if first is None else first
                parts.append(content)
            if chunk.usage and chunk.usage.prompt_tokens_details:
                cached = chunk.usage.prompt_tokens_details.cached_tokens or 0
    if first is None:
        raise RuntimeError("the stream ended without a content chunk")
    reply = "".join(parts)
    expect_reply(reply, str(text), conversation.turns)
    conversation.answer(reply)
    return first, cached > 0


def raw_turn(raw: RawAppServer, thread_id: str, conversation: Conversation) -> RawTurn:
    text = conversation.next_text()
    turn = raw.turn(thread_id, text)
    expect_reply(turn.reply, text, conversation.turns)
    return turn


def run_rounds(bench: Latency, turns: int) -> None:
    """Round 0 warms up; rounds 1..turns take one sample of every mode, interleaved."""
    daemon = CodexClient(working_dir=bench.workdir, codex_path=bench.codex, daemon="require")
    local = CodexClient(working_dir=bench.workdir, codex_path=bench.codex, daemon="off")
    http = openai.OpenAI(base_url=f"{bench.http_url}/v1", api_key="unused", max_retries=0,
                         default_headers={"X-Claif-Cod-Working-Dir": str(bench.workdir)})
    try:
        raw_thread, raw_stream_thread = bench.raw.new_thread(), bench.raw.new_thread()
        chats = {mode: Conversation(topic) for mode, topic in
                 ((DAEMON, "daemon"), (HTTP, "http"), (LOCAL, "local"), (RAW, "raw"),
                  (DAEMON_FIRST, "daemon streamed"), (HTTP_FIRST, "http streamed"), (LOCAL_FIRST, "local streamed"),
                  (RAW_FIRST, "raw streamed"))}
        for round_no in range(turns + 1):
            progress(f"latency round {round_no}/{turns}")
            samples: dict[str, float] = {EXEC: exec_turn(bench)}
            hits: dict[str, bool] = {}
            samples[DAEMON], hits[DAEMON] = client_turn(daemon, chats[DAEMON])
            samples[HTTP], hits[HTTP] = client_turn(http, chats[HTTP])
            samples[LOCAL], hits[LOCAL] = client_turn(local, chats[LOCAL])
            turn = raw_turn(bench.raw, raw_thread, chats[RAW])
            samples[RAW], hits[RAW] = turn.total_ms, turn.cached
            samples[DAEMON_FIRST], hits[DAEMON_FIRST] = client_stream(daemon, chats[DAEMON_FIRST])
            samples[HTTP_FIRST], hits[HTTP_FIRST] = client_stream(http, chats[HTTP_FIRST])
            samples[LOCAL_FIRST], hits[LOCAL_FIRST] = client_stream(local, chats[LOCAL_FIRST])
            turn = raw_turn(bench.raw, raw_stream_thread, chats[RAW_FIRST])
            samples[RAW_FIRST], hits[RAW_FIRST] = turn.first_delta_ms, turn.cached
            if round_no == 0:
                bench.warmup = samples
                continue
            for mode, took in samples.items():
                bench.samples[mode].append(took)
            for mode, hit in hits.items():
                bench.count_reuse(mode, hit)
    finally:
        daemon.close()
        local.close()
        http.close()
        progress("")


# --- 3: throughput ----------------------------------------------------------------------------


@dataclass
class Throughput:
    conversations: int = 0
    turns: int = 0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    reused: int = 0
    errors: list[str] = field(default_factory=list)
    warmup_ms: float = 0.0

    @property
    def attempted(self) -> int:
        return len(self.latencies) + len(self.errors)


async def converse(client: AsyncCodexClient, conversation: Conversation, turns: int, result: Throughput) -> None:
    """``turns`` turns in sequence; a failed turn is counted, retracted, and the conversation goes on."""
    for turn_no in range(turns):
        messages = conversation.ask()
        text = str(conversation.messages[-1]["content"])
        start = time.perf_counter()
        try:
            completion = await client.chat.completions.create(model=MODEL, messages=messages)
            took = elapsed_ms(start)
            reply = completion.choices[0].message.content or ""
            expect_reply(reply, text, conversation.turns)
        except Exception:
            result.errors.append(f"{conversation.topic}, turn {turn_no + 1}:\n{traceback.format_exc()}")
            conversation.retract()
            continue
        conversation.answer(reply)
        result.latencies.append(took)
        usage = completion.usage
        if turn_no and usage and usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens:
            result.reused += 1


async def run_throughput(codex: str, directories: list[Path]) -> Throughput:
    result = Throughput(conversations=len(directories) * CONVERSATIONS_PER_DIRECTORY, turns=TURNS_PER_CONVERSATION)
    clients = [AsyncCodexClient(working_dir=d, codex_path=codex, daemon="require") for d in directories]
    try:
        # Untimed: one turn per directory, so the daemon has its four Codex processes running.
        start = time.perf_counter()
        await asyncio.gather(*(converse(c, Conversation(f"warm-up {i}"), 1, Throughput())
                               for i, c in enumerate(clients)))
        result.warmup_ms = elapsed_ms(start)
        conversations = [
            converse(client, Conversation(f"dir {d} conversation {c}"), TURNS_PER_CONVERSATION, result)
            for d, client in enumerate(clients)
            for c in range(CONVERSATIONS_PER_DIRECTORY)
        ]
        start = time.perf_counter()
        await asyncio.gather(*conversations)
        result.wall_s = time.perf_counter() - start
    finally:
        for client in clients:
            await client.close()
    return result


# --- 4: memory --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    label: str
    daemon_rss: int
    codex: list[dict[str, Any]]
    sessions: int

    @property
    def codex_rss(self) -> int:
        return sum(p.get("rss_bytes") or 0 for p in self.codex)

    @classmethod
    def read(cls, label: str, daemon: Daemon) -> Memory:
        info = daemon.status()
        codex = [{k: p.get(k) for k in ("pid", "working_dir", "rss_bytes", "threads")} for p in info["processes"]]
        return cls(label=label, daemon_rss=rss_bytes(daemon.pid) or 0, codex=codex, sessions=info["sessions"])


@dataclass
class Sessions:
    wall_s: float = 0.0
    first_turns: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def create_sessions(codex: str, workdir: Path, count: int) -> Sessions:
    """``count`` named sessions, one turn each, one client each (its first ``create()`` is timed)."""
    result = Sessions()
    start = time.perf_counter()
    for i in range(count):
        progress(f"session {i + 1}/{count}")
        client = CodexClient(working_dir=workdir, codex_path=codex, daemon="require", session_id=f"s{i}")
        try:
            text = f"session {i} says hello"
            turn_start = time.perf_counter()
            completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
            took = elapsed_ms(turn_start)
            expect_reply(completion.choices[0].message.content or "", text, 1)
            result.first_turns.append(took)
        except Exception:
            result.errors.append(f"session s{i}:\n{traceback.format_exc()}")
        finally:
            client.close()
    result.wall_s = time.perf_counter() - start
    progress("")
    return result


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Results:
    latency: Latency
    throughput: Throughput
    memory: list[Memory]
    sessions: Sessions
    meta: dict[str, Any]
    summaries: dict[str, Summary] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)


def target(name: str, measured: float, unit: str, goal: str, ok: bool | None) -> dict[str, Any]:
    return {"name": name, "measured": measured, "unit": unit, "target": goal,
            "result": "—" if ok is None else "PASS" if ok else "MISS"}


def evaluate(results: Results) -> None:
    s = results.latency.samples
    summaries = results.summaries = {mode: Summary.of(samples) for mode, samples in s.items()}
    ratio = summaries[EXEC].median / summaries[DAEMON].median
    over = summaries[DAEMON].median - summaries[RAW].median
    local_over = summaries[LOCAL].median - summaries[RAW].median
    first_over = summaries[DAEMON_FIRST].median - summaries[RAW_FIRST].median
    local_first_over = summaries[LOCAL_FIRST].median - summaries[RAW_FIRST].median
    http_over = summaries[HTTP].median - summaries[DAEMON].median
    http_first_over = summaries[HTTP_FIRST].median - summaries[DAEMON_FIRST].median
    errors = len(results.throughput.errors) + len(results.sessions.errors)
    results.targets = [
        target("codex exec / daemon, warm turn p50", ratio, "x", f">= {TARGET_EXEC_RATIO:g}x",
               ratio >= TARGET_EXEC_RATIO),
        target("daemon - raw, warm turn p50", over, "ms", f"<= {TARGET_OVERHEAD_MS:g} ms",
               over <= TARGET_OVERHEAD_MS),
        target("in-process - raw, warm turn p50", local_over, "ms", "", None),
        target("daemon - raw, first token p50", first_over, "ms", f"<= {TARGET_OVERHEAD_MS:g} ms",
               first_over <= TARGET_OVERHEAD_MS),
        target("in-process - raw, first token p50", local_first_over, "ms", "", None),
        target("HTTP - socket, warm turn p50", http_over, "ms", "", None),
        target("HTTP - socket, first token p50", http_first_over, "ms", "", None),
        target("errors (throughput + sessions)", errors, "", "0", errors == 0),
    ]


def history_growth(samples: Sequence[float]) -> float:
    third = len(samples) // 3
    return statistics.median(samples[-third:]) - statistics.median(samples[:third])


def mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


def render(results: Results) -> str:
    meta, summaries, bench = results.meta, results.summaries, results.latency
    turns = meta["turns"]
    lines = [
        f"Codex:   {meta['codex_version']}  ({meta['codex_path']})",
        f"Machine: {meta['platform']}, {meta['cpu_count']} CPUs, Python {meta['python']}, "
        f"claif_cod {meta['claif_cod']}",
        f"Daemon:  claif-codd pid {meta['daemon_pid']}, ready {meta['daemon_start_ms']:.0f} ms after spawn; "
        f"offline model {MODEL}; total {meta['wall_s']:.1f} s",
        "",
        f"1. Warm turn latency: {turns} turns per mode, interleaved",
        "",
        f"{'mode':<34}{'median ms':>11}{'p90 ms':>9}{'p99 ms':>9}{'min ms':>9}{'median / exec':>15}",
        "-" * 87,
    ]
    baseline = summaries[EXEC].median
    for mode in TURN_MODES:
        m = summaries[mode]
        lines.append(f"{mode:<34}{m.median:>11.1f}{m.p90:>9.1f}{m.p99:>9.1f}{m.min:>9.1f}"
                     f"{m.median / baseline:>15.3f}")
    lines += [
        "",
        f"2. Time to first streamed token: {turns} turns per mode, same rounds",
        "",
        f"{'mode':<34}{'median ms':>11}{'p90 ms':>9}{'p99 ms':>9}{'min ms':>9}{'median - raw':>15}",
        "-" * 87,
    ]
    floor = summaries[RAW_FIRST].median
    for mode in FIRST_MODES:
        m = summaries[mode]
        lines.append(f"{mode:<34}{m.median:>11.1f}{m.p90:>9.1f}{m.p99:>9.1f}{m.min:>9.1f}"
                     f"{m.median - floor:>+15.1f}")
    reused = ", ".join(f"{mode} {bench.reused.get(mode, 0)}/{turns}" for mode in MODES if mode != EXEC)
    lines += [
        "",
        f"Warm thread reused (cached prompt prefix): {reused}.",
    ]
    if turns >= 6:
        growth = ", ".join(f"{mode} {history_growth(bench.samples[mode]):+.1f} ms" for mode in MODES if mode != EXEC)
        lines.append(f"Growth with the conversation (median of the last third of the rounds minus the first third): "
                     f"{growth}. The clients resend the whole history every turn; raw sends only the new message.")
    lines += [
        "Warm-up, not in the tables: " + ", ".join(f"{mode} {bench.warmup[mode]:.1f} ms" for mode in
                                                     TURN_MODES) + ".",
    ]
    t = results.throughput
    ok = len(t.latencies)
    per_turn = Summary.of(t.latencies) if len(t.latencies) >= 2 else None
    lines += [
        "",
        f"3. Throughput through the daemon: {t.conversations} concurrent conversations, {DIRECTORIES} working "
        f"directories ({CONVERSATIONS_PER_DIRECTORY} each, one AsyncCodexClient per directory), "
        f"{t.turns} turns each",
        "",
        f"turns completed     {ok}/{t.conversations * t.turns} in {t.wall_s:.2f} s = {ok / t.wall_s:.1f} turns/s"
        if t.wall_s else "turns completed     0",
    ]
    if per_turn is not None:
        lines.append(f"per-turn latency    p50 {per_turn.median:.1f} ms, p90 {per_turn.p90:.1f} ms, "
                     f"p99 {per_turn.p99:.1f} ms, min {per_turn.min:.1f} ms")
    lines += [
        f"errors              {len(t.errors)}",
        f"warm thread reused  {t.reused}/{t.conversations * (t.turns - 1)} follow-up turns",
        f"warm-up (untimed)   {t.warmup_ms:.0f} ms for the first turn in each directory",
        "",
        f"4. Memory with {SESSIONS} idle sessions (one turn each, one client at a time)",
        "",
    ]
    sessions = results.sessions
    if len(sessions.first_turns) >= 2:
        first = Summary.of(sessions.first_turns)
        lines.append(f"session first turn  p50 {first.median:.1f} ms, p90 {first.p90:.1f} ms, p99 {first.p99:.1f} ms "
                     f"(the create() call of a new client: connect, hello, thread/start, turn)")
    lines += [
        f"all {SESSIONS} sessions    {sessions.wall_s:.1f} s including client construction and close; "
        f"{len(sessions.errors)} errors",
        "",
        f"{'when':<26}{'daemon RSS':>13}{'Codex RSS':>13}{'processes':>11}{'threads':>9}{'total':>13}{'sessions':>10}",
        "-" * 95,
    ]
    for m in results.memory:
        threads = sum(p.get("threads") or 0 for p in m.codex)
        lines.append(f"{m.label:<26}{mib(m.daemon_rss):>13}{mib(m.codex_rss):>13}{len(m.codex):>11}{threads:>9}"
                     f"{mib(m.daemon_rss + m.codex_rss):>13}{m.sessions:>10}")
    before, after = results.memory[-2], results.memory[-1]
    lines += [
        f"per idle session          daemon {(after.daemon_rss - before.daemon_rss) / SESSIONS / 1024:+.1f} KiB, "
        f"Codex {(after.codex_rss - before.codex_rss) / SESSIONS / 1024:+.1f} KiB",
        "",
        "Targets (informational; nothing asserts)",
        "",
        f"{'target':<40}{'measured':>12}{'goal':>12}{'result':>8}",
        "-" * 72,
    ]
    for row in results.targets:
        value = f"{row['measured']:.1f}x" if row["unit"] == "x" else (
            f"{row['measured']:+.1f} ms" if row["unit"] == "ms" else f"{row['measured']:g}")
        lines.append(f"{row['name']:<40}{value:>12}{row['target'] or '—':>12}{row['result']:>8}")
    lines += ["", meta["daemon_stop"]]
    return "\n".join(lines)


def write_json(path: Path, results: Results) -> None:
    t = results.throughput
    payload = {
        "meta": results.meta,
        "unit": "ms",
        "latency": {
            "samples": results.latency.samples,
            "warmup": results.latency.warmup,
            "summary": {mode: vars(s) for mode, s in results.summaries.items()},
            "warm_thread_reused": results.latency.reused,
        },
        "throughput": {
            "conversations": t.conversations,
            "turns_per_conversation": t.turns,
            "directories": DIRECTORIES,
            "completed": len(t.latencies),
            "wall_s": t.wall_s,
            "turns_per_s": len(t.latencies) / t.wall_s if t.wall_s else 0.0,
            "latencies": t.latencies,
            "warm_thread_reused": t.reused,
            "errors": t.errors,
            "warmup_ms": t.warmup_ms,
        },
        "memory": {
            "sessions": SESSIONS,
            "create_s": results.sessions.wall_s,
            "first_turn_ms": results.sessions.first_turns,
            "errors": results.sessions.errors,
            "snapshots": [{"label": m.label, "daemon_rss_bytes": m.daemon_rss, "codex_rss_bytes": m.codex_rss,
                           "sessions": m.sessions, "processes": m.codex} for m in results.memory],
        },
        "targets": results.targets,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def print_errors(results: Results, daemon_log: str) -> None:
    """The first failures in full, on stderr: they are claif_cod problems worth a report."""
    errors = results.throughput.errors + results.sessions.errors
    if not errors:
        return
    print(f"\n{len(errors)} failed turns; the first ones:", file=sys.stderr)
    for error in errors[:3]:
        print(error, file=sys.stderr)
    print(f"Daemon log, last lines:\n{daemon_log}", file=sys.stderr)


# --- the run ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=30, help="timed turns per latency mode (default 30)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples to PATH")
    return parser.parse_args(argv)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM unwinds like Ctrl-C does, so the daemon and every Codex process still get stopped."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    codex = str(codex_cli_bin.bundled_codex_path())
    started = time.perf_counter()
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="claif-cod-daemon-bench-") as scratch, \
            ModelServer() as server, contextlib.ExitStack() as cleanup:
        root = Path(scratch)
        home = write_codex_home(root / "codex-home", server.url)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        socket_path = run_dir / "codd.sock"
        os.environ.pop("CLAIF_COD_AUTOSTART", None)  # only the daemon started here may answer
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
