"""Warm Responses turns the ways agent libraries send them, beside chat and the raw floor.

Each round takes one turn of every row, in a new random order, on conversations that grow by one
turn a round, all on one ``CodexClient(daemon="off")`` and its Codex process:

``raw, same process``        the floor: an ephemeral thread driven directly on the client's own
                             Codex process and event loop (``RawAppServer.attached``)
``chat``                     ``chat.completions.create`` with the whole history
``responses, transcript``    ``responses.create`` with the whole transcript as ``input`` (the earlier
                             input items, each response's output items as they came back, the new
                             message), no ``previous_response_id``: what the Agents SDK,
                             langchain-openai and pydantic-ai send; stored (``store`` default true)
``  ... store=false``        the same with ``store=False``
``responses, previous id``   ``responses.create(previous_response_id=..., input=<new message>)``
``tool loop: message → call`` the Agents SDK's loop with one function tool, whole transcript each
                             request (stored): a new user message the model answers with a call
``tool loop: results → answer`` then the transcript with the call's output: the answer

Stored responses run on persisted threads (continued by id, also after a restart: that needs a
rollout), which costs Codex ~15 ms a turn (see floor_bench's ``raw persisted``).  Every reply is
checked; nothing asserts on time.
Run: ``python bench/responses_turns.py [--turns 20]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from bench_common import at_least_two, elapsed_ms, model_server_process, offline_workdir, round_orders, run_header
from offline_chat import MODEL, Summary, expect_reply, progress
from openai.types.responses import FunctionToolParam
from raw_app_server import RawAppServer

from claif_cod import CodexClient

RAW, CHAT = "raw, same process", "chat"
TRANSCRIPT, TRANSCRIPT_EPHEMERAL, PREVIOUS = (
    "responses, transcript",
    "  ... store=false",
    "responses, previous id",
)
TOOL_CALL, TOOL_ANSWER = "tool loop: message → call", "tool loop: results → answer"
ROWS = (RAW, CHAT, TRANSCRIPT, TRANSCRIPT_EPHEMERAL, PREVIOUS, TOOL_CALL, TOOL_ANSWER)
TOOL = cast(
    FunctionToolParam,  # openai's type requires "strict"; sent without it, as before
    {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
    },
)


class Talk:
    """One conversation: its turn count and what its row re-sends or chains."""

    def __init__(self, topic: str) -> None:
        self.topic, self.turns = topic, 0
        self.items: list[Any] = []
        self.previous: str | None = None

    def ask(self) -> str:
        self.turns += 1
        return f"{self.topic} message {self.turns}"

    def check(self, reply: str, text: str) -> None:
        expect_reply(reply, text, self.turns)


def timed(step: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = step()
    return elapsed_ms(start), result


def run(turns: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {row: [] for row in ROWS}
    with model_server_process() as (url, _), tempfile.TemporaryDirectory(prefix="claif-cod-resp-bench-") as scratch:
        root = Path(scratch)
        workdir = offline_workdir(root, url)
        with CodexClient(working_dir=workdir, daemon="off") as client:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "start"}])
            raw = RawAppServer.attached(client, workdir)
            raw_thread = raw.new_thread()
            talks = {row: Talk(row.strip(" .")) for row in ROWS}

            def raw_turn() -> None:
                talk = talks[RAW]
                text = talk.ask()
                result = raw.turn(raw_thread, text)  # timed inside the engine loop: no thread hop counted
                talk.check(result.reply, text)
                samples[RAW].append(result.total_ms)

            def chat_turn() -> None:
                talk = talks[CHAT]
                text = talk.ask()
                talk.items.append({"role": "user", "content": text})
                took, completion = timed(lambda: client.chat.completions.create(model=MODEL, messages=talk.items))
                reply = completion.choices[0].message.content or ""
                talk.check(reply, text)
                talk.items.append({"role": "assistant", "content": reply})
                samples[CHAT].append(took)

            def transcript_turn(row: str, store: bool) -> None:
                talk = talks[row]
                text = talk.ask()
                talk.items.append({"role": "user", "content": text})
                took, response = timed(lambda: client.responses.create(model=MODEL, input=talk.items, store=store))
                talk.check(response.output_text, text)
                talk.items += [item.model_dump(exclude_none=True) for item in response.output]
                samples[row].append(took)

            def previous_turn() -> None:
                talk = talks[PREVIOUS]
                text = talk.ask()
                took, response = timed(
                    lambda: client.responses.create(model=MODEL, input=text, previous_response_id=talk.previous)
                )
                talk.check(response.output_text, text)
                talk.previous = response.id
                samples[PREVIOUS].append(took)

            def tool_loop() -> None:
                talk = talks[TOOL_CALL]
                text = talk.ask()
                talk.items.append({"role": "user", "content": f'{text} [[call:lookup {{"key": "k{talk.turns}"}}]]'})
                took, response = timed(lambda: client.responses.create(model=MODEL, input=talk.items, tools=[TOOL]))
                [call] = [item for item in response.output if item.type == "function_call"]
                talk.items += [item.model_dump(exclude_none=True) for item in response.output]
                talk.items.append({"type": "function_call_output", "call_id": call.call_id, "output": f"v{talk.turns}"})
                samples[TOOL_CALL].append(took)
                took, response = timed(lambda: client.responses.create(model=MODEL, input=talk.items, tools=[TOOL]))
                if response.output_text != f"Tool lookup returned: v{talk.turns}":
                    raise SystemExit(f"unexpected answer {response.output_text!r}")
                talk.items += [item.model_dump(exclude_none=True) for item in response.output]
                samples[TOOL_ANSWER].append(took)

            steps = [
                raw_turn,
                chat_turn,
                lambda: transcript_turn(TRANSCRIPT, True),
                lambda: transcript_turn(TRANSCRIPT_EPHEMERAL, False),
                previous_turn,
                tool_loop,
            ]
            for round_no, order in zip(range(turns + 1), round_orders(steps), strict=False):
                progress(f"round {round_no}/{turns}")
                for step in order:
                    step()
                if round_no == 0:  # starts every conversation: not a warm turn
                    for row in ROWS:
                        samples[row].clear()
            progress("")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=20)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    samples = run(args.turns)
    print(run_header(load, f"{args.turns} warm turns a row"))
    print()
    floor = statistics.median(samples[RAW])
    print(f"{'row':<30}{'median ms':>10}{'- floor':>9}{'p90 ms':>9}")
    for row in ROWS:
        summary = Summary.of(samples[row])
        print(f"{row:<30}{summary.median:>10.1f}{summary.median - floor:>+9.1f}{summary.p90:>9.1f}")


if __name__ == "__main__":
    main()
