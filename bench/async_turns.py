"""An async client's timed turns on a conversation of its own, shared by the benchmarks that compare
two ways the same client answers (``loop_connection.py``, ``trio_turns.py``)."""

from __future__ import annotations

import statistics
import time

from bench_common import median_interval
from openai.types.chat import ChatCompletionMessageParam

from claif_cod import AsyncCodexClient


class Chat:
    def __init__(self, name: str) -> None:
        self.name, self.turns = name, 0
        self.messages: list[ChatCompletionMessageParam] = []

    def ask(self) -> list[ChatCompletionMessageParam]:
        if len(self.messages) > 20:  # a new conversation now and then, as in turn_stages.py
            self.messages = []
        self.turns += 1
        self.messages.append({"role": "user", "content": f"{self.name} {self.turns}"})
        return self.messages

    def answer(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})


async def turn(client: AsyncCodexClient, chat: Chat) -> float:
    start = time.perf_counter()
    reply = await client.chat.completions.create(model="o4-mini", messages=chat.ask())
    took = (time.perf_counter() - start) * 1000
    chat.answer(reply.choices[0].message.content or "")
    return took


async def first_token(client: AsyncCodexClient, chat: Chat) -> float:
    start = time.perf_counter()
    stream = await client.chat.completions.create(model="o4-mini", messages=chat.ask(), stream=True)
    parts = []
    took = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            took = took or (time.perf_counter() - start) * 1000
            parts.append(chunk.choices[0].delta.content)
    chat.answer("".join(parts))
    assert took is not None
    return took


def paired(label: str, first: tuple[str, list[float]], second: tuple[str, list[float]], width: int = 28) -> str:
    """Two ways' medians and their paired difference (first - second) with its 95% interval."""
    (one, a), (other, b) = first, second
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    low, high = median_interval(diffs)
    return (
        f"{label:<{width}} {one} {statistics.median(a):6.2f}  {other} {statistics.median(b):6.2f}"
        f"  paired {statistics.median(diffs):+.2f} [{low:+.2f}, {high:+.2f}] ms"
    )
