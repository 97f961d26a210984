"""How soon a stream's first text reaches the caller once Codex sent it, for each kind of stream.

For ``chat.completions`` and ``responses`` streams, from a sync ``CodexClient`` and an async
``AsyncCodexClient`` (both ``daemon="off"``), each round takes one streamed turn of each kind in a
new random order, and times the stage from the engine reading Codex's first
``item/agentMessage/delta`` line (marked by wrapping ``AppServer._dispatch``, as ``turn_stages.py``
does) to the caller taking the first text out of openai's stream: a content chunk, or a
``response.output_text.delta`` event.  A raw client's stage is one step of its own event loop.
A chat stream's first chunk is its reply to ``create()``; a Responses stream's first text comes
after several events (``response.created`` is the reply), while the rest of the model's burst
arrives: so the two paths that hand a stream's events from the engine loop to the caller are
both timed.  Nothing asserts on time.
Run: ``python bench/first_event.py [--turns 60] [--pace MS]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_common import at_least_two, model_server_process, offline_workdir, round_orders, run_header
from floor_bench import Chat
from offline_chat import MODEL, StreamedText
from openai.types.responses import ResponseStreamEvent
from turn_stages import instrument, marks

from claif_cod import AsyncCodexClient, CodexClient


class Responses:
    """A Responses conversation continued by ``previous_response_id``; :meth:`take` reads its turns' events."""

    def __init__(self, pace_ms: int) -> None:
        self.pace_ms, self.turns = pace_ms, 0
        self.previous: str | None = None
        self.first: float | None = None
        """When the turn's first text came out."""

    def ask(self) -> str:
        self.turns += 1
        self.first = None
        text = f"responses message {self.turns}"
        return f"{text} [[slow:{self.pace_ms}]]" if self.pace_ms else text

    def take(self, event: ResponseStreamEvent) -> None:
        if event.type == "response.output_text.delta" and self.first is None:
            self.first = time.perf_counter()
        elif event.type == "response.completed":
            self.previous = event.response.id


def _first_text(started: float | None) -> float:
    assert started is not None, "the stream had no text"
    return (started - marks["delta"]) * 1000


def chat_sync(client: CodexClient, chat: Chat) -> float:
    chat.ask()
    text = StreamedText()
    with client.chat.completions.create(model=MODEL, messages=chat.messages, stream=True) as stream:
        for chunk in stream:
            text.take(chunk)
    chat.answer("".join(text.parts))
    return _first_text(text.first)


async def chat_async(client: AsyncCodexClient, chat: Chat) -> float:
    chat.ask()
    text = StreamedText()
    async with await client.chat.completions.create(model=MODEL, messages=chat.messages, stream=True) as stream:
        async for chunk in stream:
            text.take(chunk)
    chat.answer("".join(text.parts))
    return _first_text(text.first)


def responses_sync(client: CodexClient, conversation: Responses) -> float:
    question = conversation.ask()
    with client.responses.create(
        model=MODEL, input=question, stream=True, previous_response_id=conversation.previous
    ) as stream:
        for event in stream:
            conversation.take(event)
    return _first_text(conversation.first)


async def responses_async(client: AsyncCodexClient, conversation: Responses) -> float:
    question = conversation.ask()
    async with await client.responses.create(
        model=MODEL, input=question, stream=True, previous_response_id=conversation.previous
    ) as stream:
        async for event in stream:
            conversation.take(event)
    return _first_text(conversation.first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=60)
    parser.add_argument(
        "--pace", type=int, default=0, metavar="MS", help="the offline model waits MS ms before each streamed word"
    )
    args = parser.parse_args()
    instrument()
    load_start = os.getloadavg()[0]
    loop = asyncio.new_event_loop()
    with model_server_process() as (model_url, _), tempfile.TemporaryDirectory(prefix="claif-cod-first-") as scratch:
        workdir = offline_workdir(Path(scratch), model_url)
        sync_client = CodexClient(working_dir=workdir, daemon="off")
        async_client = AsyncCodexClient(working_dir=workdir, daemon="off")
        chats = {"sync": Chat("sync", 10, False, args.pace), "async": Chat("async", 10, False, args.pace)}
        conversations = {"sync": Responses(args.pace), "async": Responses(args.pace)}
        kinds: dict[str, Callable[[], float]] = {
            "chat, sync client": lambda: chat_sync(sync_client, chats["sync"]),
            "chat, async client": lambda: loop.run_until_complete(chat_async(async_client, chats["async"])),
            "responses, sync client": lambda: responses_sync(sync_client, conversations["sync"]),
            "responses, async client": lambda: loop.run_until_complete(
                responses_async(async_client, conversations["async"])
            ),
        }
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        try:
            for round_no, order in zip(range(args.turns + 1), round_orders(list(kinds)), strict=False):
                for kind in order:
                    marks.clear()
                    took = kinds[kind]()
                    if round_no > 0:  # round 0 starts the threads
                        samples[kind].append(took)
        finally:
            sync_client.close()
            loop.run_until_complete(async_client.close())
            loop.close()
    print(run_header(load_start, f"{args.turns} streamed turns of each kind, interleaved; model pace {args.pace} ms"))
    print("\nCodex's first delta read by the engine -> the caller has the first text, median ms")
    for kind, taken in samples.items():
        print(f"  {kind:<26} {statistics.median(taken):7.3f}")


if __name__ == "__main__":
    main()
