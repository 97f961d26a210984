"""What ``daemon_bench.py`` measures: warm-turn and first-token latency of every mode, interleaved
round by round; throughput of concurrent conversations through the daemon; and the first turns of
many named sessions (their memory is read around them by the run).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import openai
from bench_common import elapsed_ms, round_orders
from offline_chat import MODEL, Conversation, exec_turn, expect_reply, progress, streamed
from raw_app_server import RawAppServer, RawTurn

from claif_cod import AsyncCodexClient, CodexClient

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
    reply, first, _, cached = streamed(client, messages)
    expect_reply(reply, str(messages[-1]["content"]), conversation.turns)
    conversation.answer(reply)
    return first, cached


def raw_turn(raw: RawAppServer, thread_id: str, conversation: Conversation) -> RawTurn:
    text = conversation.next_text()
    turn = raw.turn(thread_id, text)
    expect_reply(turn.reply, text, conversation.turns)
    return turn


def run_rounds(bench: Latency, turns: int) -> None:
    """Round 0 warms up; rounds 1..turns take one sample of every mode, interleaved in a new random
    order each round."""
    daemon = CodexClient(working_dir=bench.workdir, codex_path=bench.codex, daemon="require")
    local = CodexClient(working_dir=bench.workdir, codex_path=bench.codex, daemon="off")
    http = openai.OpenAI(
        base_url=f"{bench.http_url}/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"X-Claif-Cod-Working-Dir": str(bench.workdir)},
    )
    try:
        raw_thread, raw_stream_thread = bench.raw.new_thread(), bench.raw.new_thread()
        chats = {
            mode: Conversation(topic)
            for mode, topic in (
                (DAEMON, "daemon"),
                (HTTP, "http"),
                (LOCAL, "local"),
                (RAW, "raw"),
                (DAEMON_FIRST, "daemon streamed"),
                (HTTP_FIRST, "http streamed"),
                (LOCAL_FIRST, "local streamed"),
                (RAW_FIRST, "raw streamed"),
            )
        }

        def raw_total(thread: str, mode: str) -> tuple[float, bool]:
            turn = raw_turn(bench.raw, thread, chats[mode])
            return turn.total_ms, turn.cached

        def raw_first(thread: str, mode: str) -> tuple[float, bool]:
            turn = raw_turn(bench.raw, thread, chats[mode])
            return turn.first_delta_ms, turn.cached

        steps: list[tuple[str, Callable[[], tuple[float, bool]]]] = [
            (EXEC, lambda: (exec_turn(bench.codex, bench.workdir, bench.env), True)),
            (DAEMON, lambda: client_turn(daemon, chats[DAEMON])),
            (HTTP, lambda: client_turn(http, chats[HTTP])),
            (LOCAL, lambda: client_turn(local, chats[LOCAL])),
            (RAW, lambda: raw_total(raw_thread, RAW)),
            (DAEMON_FIRST, lambda: client_stream(daemon, chats[DAEMON_FIRST])),
            (HTTP_FIRST, lambda: client_stream(http, chats[HTTP_FIRST])),
            (LOCAL_FIRST, lambda: client_stream(local, chats[LOCAL_FIRST])),
            (RAW_FIRST, lambda: raw_first(raw_stream_thread, RAW_FIRST)),
        ]
        for round_no, order in zip(range(turns + 1), round_orders(steps), strict=False):
            progress(f"latency round {round_no}/{turns}")
            samples: dict[str, float] = {}
            hits: dict[str, bool] = {}
            for mode, step in order:
                samples[mode], hits[mode] = step()
            hits.pop(EXEC)
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
        await asyncio.gather(
            *(converse(c, Conversation(f"warm-up {i}"), 1, Throughput()) for i, c in enumerate(clients))
        )
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


# --- 4: named sessions (memory is read around them) ----------------------------------------------


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
