"""What every benchmark here asks the offline test model, and what it must get back.

The model (``claif_cod.testing.ModelServer``) answers ``Echo: <text>`` word by word, prefixed with
``[turn K]`` from the second user message on, so a reply proves the turn reached the right thread
with the whole history. Beside that: the status line the benchmarks print while they run, and the
summary (median, p90, p99, min) of their timings, and ``codex exec`` run once per turn (what a wrapper
that shells out to the CLI pays for every request).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

MODEL = "o4-mini"
PROMPT = "hello"


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


def exec_turn(codex: str, workdir: Path, env: Mapping[str, str]) -> float:
    """Spawn ``codex exec`` for one turn; milliseconds from spawn to exit."""
    command = [codex, "exec", "--json", "--skip-git-repo-check", PROMPT]
    start = time.perf_counter()
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=workdir,
        env=dict(env),
        timeout=60,
        check=False,
    )
    took = (time.perf_counter() - start) * 1000
    if done.returncode != 0 or f"Echo: {PROMPT}" not in done.stdout:
        raise RuntimeError(f"codex exec failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return took


class StreamedText:
    """A streamed reply's text, taken chunk by chunk, and when its first piece came out."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.parts: list[str] = []

    def take(self, chunk: ChatCompletionChunk) -> None:
        content = chunk.choices[0].delta.content if chunk.choices else None
        if content:
            self.first = time.perf_counter() if self.first is None else self.first
            self.parts.append(content)


def streamed(client: openai.OpenAI, messages: list[ChatCompletionMessageParam]) -> tuple[str, float, float, bool]:
    """One streamed ``chat.completions`` request: the reply, milliseconds to its first content chunk
    and to its end, and whether Codex reused the thread (a cached prompt prefix in the usage)."""
    text = StreamedText()
    cached = 0
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    with stream:
        for chunk in stream:
            text.take(chunk)
            if chunk.usage and chunk.usage.prompt_tokens_details:
                cached = chunk.usage.prompt_tokens_details.cached_tokens or 0
    end = (time.perf_counter() - start) * 1000
    if text.first is None:
        raise RuntimeError("the stream ended without a content chunk")
    return "".join(text.parts), (text.first - start) * 1000, end, cached > 0
