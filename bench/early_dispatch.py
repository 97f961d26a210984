"""What dispatching a chat turn before openai builds its HTTP request saves (``claif_cod/transport/early.py``).

One ``CodexClient(daemon="off")`` and its Codex process take turns in two modes, alternating which
goes first each round, on conversations that grow by one turn a round: ``early`` is claif_cod as
shipped; ``late`` replaces the early dispatch (``fast_create``'s ``answered`` and ``started``), in
this process only, with nothing, so that ``create()`` goes through openai's own pipeline and the turn
starts when openai's request reaches the transport (as before the early dispatch existed).  Each
mode runs a plain turn and a streamed one (time to the first content chunk); then, in rounds of
their own, a ``responses.create`` turn with the whole transcript (``store=False``, as an agent
library re-sends it).  Every reply is checked; nothing asserts on time.
Run: ``python bench/early_dispatch.py [--turns 60]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench_common import at_least_two, elapsed_ms, model_server_process, private_home, run_header
from offline_chat import MODEL, Conversation, expect_reply, progress, streamed

import claif_cod.fast_create
from claif_cod import CodexClient
from claif_cod.testing import write_codex_home
from claif_cod.transport import early

MODES = ("early", "late")
KINDS = ("turn", "first token", "response")
SHIPPED = (early.answered, early.started)


@contextlib.contextmanager
def no_early_dispatch(*_args: object) -> Iterator[None]:
    yield


def dispatch(mode: str) -> None:
    """``create()`` as shipped (``early``), or without its early dispatch (``late``)."""
    dispatches = SHIPPED if mode == "early" else (no_early_dispatch, no_early_dispatch)
    vars(claif_cod.fast_create).update(zip(("answered", "started"), dispatches, strict=True))  # what create() calls


def answered(conversation: Conversation, reply: str) -> None:
    expect_reply(reply, str(conversation.messages[-1]["content"]), conversation.turns)
    conversation.answer(reply)


def run(turns: int) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {mode: {kind: [] for kind in KINDS} for mode in MODES}
    with model_server_process() as (url, _), tempfile.TemporaryDirectory(prefix="claif-cod-early-") as scratch:
        root = Path(scratch)
        private_home(root)
        os.environ["CODEX_HOME"] = str(write_codex_home(root / "codex-home", url))
        with CodexClient(working_dir=root, daemon="off") as client:
            plain = {mode: Conversation(f"{mode} plain") for mode in MODES}
            streaming = {mode: Conversation(f"{mode} stream") for mode in MODES}
            transcripts: dict[str, list[Any]] = {mode: [] for mode in MODES}
            for round_no in range(turns + 1):
                progress(f"chat round {round_no}/{turns}")
                for mode in MODES if round_no % 2 else MODES[::-1]:
                    dispatch(mode)
                    messages = plain[mode].ask()
                    start = time.perf_counter()
                    completion = client.chat.completions.create(model=MODEL, messages=messages)
                    took = elapsed_ms(start)
                    answered(plain[mode], completion.choices[0].message.content or "")
                    reply, first, _, _ = streamed(client, streaming[mode].ask())
                    answered(streaming[mode], reply)
                    if round_no > 0:  # round 0 starts the conversations
                        samples[mode]["turn"].append(took)
                        samples[mode]["first token"].append(first)
            # Apart from the chat rounds: mixed in, a Responses turn moved the next turns' figures by
            # milliseconds depending on their order (not on the dispatch), on this 2-CPU machine.
            for round_no in range(turns + 1):
                progress(f"responses round {round_no}/{turns}")
                for mode in MODES if round_no % 2 else MODES[::-1]:
                    dispatch(mode)
                    text = f"{mode} response {round_no + 1}"
                    transcripts[mode].append({"role": "user", "content": text})
                    start = time.perf_counter()
                    response = client.responses.create(model=MODEL, input=transcripts[mode], store=False)
                    responded = elapsed_ms(start)
                    expect_reply(response.output_text, text, round_no + 1)
                    transcripts[mode] += [item.model_dump(exclude_none=True) for item in response.output]
                    if round_no > 0:
                        samples[mode]["response"].append(responded)
            dispatch("early")
            progress("")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--turns", type=at_least_two, default=60)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    samples = run(args.turns)
    print(run_header(load, f"{args.turns} rounds"))
    print()
    print(f"{'median ms':<14}{'early':>8}{'late':>8}{'early - late':>14}")
    for kind in KINDS:
        early, late = (statistics.median(samples[mode][kind]) for mode in MODES)
        print(f"{kind:<14}{early:>8.2f}{late:>8.2f}{early - late:>+14.2f}")


if __name__ == "__main__":
    main()
