"""Where a warm in-process turn spends its time: cProfile over a growing conversation.

Run ``python bench/profile_turn.py [--turns N]``. It prints the per-call latency every 10 turns
and the functions with the most internal time. The turn itself (engine and Codex) shows up as
the time the caller's thread waits on the engine loop; everything else is client-side.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time

from openai.types.chat import ChatCompletionMessageParam

from claif_cod import CodexClient
from claif_cod.testing import ModelServer, write_codex_home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=40)
    args = parser.parse_args()
    with ModelServer() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["CODEX_HOME"] = str(write_codex_home(os.path.join(tmp, "codex-home"), server.url))
        with CodexClient(working_dir=tmp, daemon="off", model="o4-mini") as client:
            messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "q0"}]
            reply = client.chat.completions.create(model="o4-mini", messages=messages)
            messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
            profile = cProfile.Profile()
            for turn in range(1, args.turns):
                messages.append({"role": "user", "content": f"q{turn}"})
                started = time.perf_counter()
                profile.enable()
                reply = client.chat.completions.create(model="o4-mini", messages=messages)
                profile.disable()
                if turn % 10 == 0:
                    print(f"turn {turn:3d} ({len(messages)} messages): {(time.perf_counter() - started) * 1000:.1f} ms")
                messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
