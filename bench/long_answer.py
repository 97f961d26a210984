"""One long streamed answer, in-process, through the daemon's socket and over its HTTP endpoint:
does its time grow with its length, or faster?

A stream's text was kept in strings copied on every delta, so a 40 000-delta answer took ~3 s
in-process and ~12 s at 80 000 deltas through the daemon (quadratic). The offline model streams
``[[long:N]]`` as N deltas of one word each; every answer is checked whole. Run:
``python bench/long_answer.py --deltas 10000,20000,40000,80000``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import openai
from bench_common import model_server_process, offline_workdir, run_header
from openai.types.chat import ChatCompletionMessageParam
from private_daemon import sigterm_as_interrupt, started_in

from claif_cod import CodexClient

MODEL = "o4-mini"


def chat(client: openai.OpenAI, n: int) -> str:
    prompt: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"[[long:{n}]] chat"}]
    stream = client.chat.completions.create(model=MODEL, messages=prompt, stream=True)
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def responses(client: openai.OpenAI, n: int) -> str:
    stream = client.responses.create(model=MODEL, input=f"[[long:{n}]] responses", stream=True)
    return "".join(event.delta for event in stream if event.type == "response.output_text.delta")


def timed(ask: Callable[[openai.OpenAI, int], str], client: openai.OpenAI, n: int) -> float:
    start = time.perf_counter()
    text = ask(client, n)
    took = time.perf_counter() - start
    if text.split() != [f"w{i}" for i in range(1, n + 1)]:
        raise SystemExit(f"{ask.__name__}: the answer of {n} words came back other than sent")
    return took


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--deltas", default="10000,20000,40000,80000", help="comma-separated answer lengths")
    args = parser.parse_args(argv)
    lengths = [int(n) for n in args.deltas.split(",")]
    load_start = os.getloadavg()[0]
    with (
        sigterm_as_interrupt(),
        model_server_process() as (url, _),
        tempfile.TemporaryDirectory(prefix="claif-cod-long-") as scratch,
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        workdir = offline_workdir(root, url)
        daemon = started_in(root, cleanup)
        http_url = daemon.status()["http"]
        clients = {
            "in-process": CodexClient(daemon="off", working_dir=str(workdir)),
            "daemon socket": CodexClient(daemon="require", working_dir=str(workdir)),
            "daemon HTTP": openai.OpenAI(
                base_url=f"{http_url}/v1",
                api_key="unused",
                max_retries=0,
                default_headers={"X-Claif-Cod-Working-Dir": str(workdir)},
            ),
        }
        for client in clients.values():
            cleanup.callback(client.close)
            timed(chat, client, 10)  # warm: the process, the thread
        rows = [
            (f"{name}, {ask.__name__}", client, ask) for name, client in clients.items() for ask in (chat, responses)
        ]
        results = {label: [timed(ask, client, n) for n in lengths] for label, client, ask in rows}
    print(run_header(load_start, "one long streamed answer per row and length"))
    print(f"\nseconds for the whole answer (and per 10 000 deltas)\n{'row':<28}" + "".join(f"{n:>22}" for n in lengths))
    for label, seconds in results.items():
        cells = "".join(f"{s:>10.2f} ({s / n * 1e4:5.2f}/10k)" for s, n in zip(seconds, lengths, strict=True))
        print(f"{label:<28}{cells}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
