"""How much slower a turn's Python runs right after its thread sat idle, as it does while Codex works.

A warm turn's own code runs in a thread that has just waited ~10 ms for Codex (or, before the turn,
for its caller).  On this benchmark's VM that code then runs several times slower than back to back:
while a CPU idles, what else runs on it (the hypervisor's other guests, Codex, the model) takes its
caches.  So the time a client adds to a turn grows with how much code and data it touches, not only
with how many instructions it runs; the raw floor touches little.

Each piece below is what one side runs per streamed turn, without Codex (10 messages of history):

``floor``            what a hand-written client runs: encode ``turn/start``, decode the first delta
``ours: request``    ``create()``'s request (``fast_create.prepare``), the engine's parse and history
                     hash (``parse_chat_request``, ``history_digest``)
``ours: 1st chunk``  the first chunk as a client's ``Stream`` gets it from the transport: its
                     event's data split off and openai's ``ChatCompletionChunk`` built from it
                     (``event_stream``, ``openai_objects.event_from_json``)

Each is timed back to back ("hot") and right after the thread slept 0.1 to 10 ms, medians of
``--rounds`` each.  Nothing asserts on time.
Run: ``python bench/cold_code.py [--rounds 300]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import msgspec
from bench_common import run_header
from openai.types.chat import ChatCompletionChunk

from claif_cod.engine import wire, wire_notifications
from claif_cod.engine.config import ProcessKey
from claif_cod.event_stream import split_data
from claif_cod.fast_create import CHAT, prepare
from claif_cod.openai_compat.request import parse_chat_request
from claif_cod.openai_objects import event_from_json
from claif_cod.transport.backend import sse

IDLE_MS = (0.0, 0.1, 1.0, 2.0, 10.0)
MESSAGES = [
    {"role": "user", "content": f"topic message {i}"} if i % 2 == 0 else {"role": "assistant", "content": f"reply {i}"}
    for i in range(11)
]
KEY = ProcessKey("/usr/bin/codex", "/home/me/.codex", None, "/home/me/project", None, None)
CHUNK = sse(
    msgspec.json.encode(
        {
            "id": "chatcmpl-0123456789abcdef0123456789abcdef",
            "object": "chat.completion.chunk",
            "created": 1764800000,
            "model": "gpt-5.1-codex",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}],
        }
    )
)
DELTA = msgspec.json.encode(
    {"threadId": "t-1", "turnId": "u-1", "itemId": "i-1", "delta": "Hello"}
)  # a delta notification's params


def floor() -> None:
    params = wire.TurnStartParams(thread_id="t-1", input=[wire.TextInput(text="topic message 11")])
    msgspec.json.encode(params)
    msgspec.json.decode(DELTA, type=wire_notifications.AgentMessageDelta)


def our_request() -> None:
    fast = prepare({"model": "gpt-5.1-codex", "messages": MESSAGES, "stream": True}, CHAT)
    assert fast is not None
    parsed = parse_chat_request(fast.content, default_model=None, strict=False)
    parsed.conversation.history_digest(KEY)


def our_first_chunk() -> None:
    (data,) = split_data(CHUNK)
    event_from_json(None, ChatCompletionChunk, data, None)


PIECES: dict[str, Callable[[], None]] = {
    "floor": floor,
    "ours: request": our_request,
    "ours: 1st chunk": our_first_chunk,
}


def timed(piece: Callable[[], None], idle_ms: float, rounds: int) -> float:
    """Median µs of ``piece`` right after ``idle_ms`` of sleep (0: back to back, after a warm-up)."""
    samples = []
    for _ in range(10):
        piece()
    for _ in range(rounds):
        if idle_ms:
            time.sleep(idle_ms / 1000)
        start = time.perf_counter()
        piece()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    table = {name: [timed(piece, idle, args.rounds) for idle in IDLE_MS] for name, piece in PIECES.items()}
    print(run_header(load, f"{args.rounds} rounds per cell, medians in µs (x hot)"))
    print(f"\n{'':18}" + "".join(f"{'hot' if not idle else f'after {idle:g} ms idle':>22}" for idle in IDLE_MS))
    for name, cells in table.items():
        hot = cells[0]
        print(f"{name:18}" + "".join(f"{cell:13.1f} ({cell / hot:4.1f}x)" for cell in cells))
    ours = [a + b for a, b in zip(table["ours: request"], table["ours: 1st chunk"], strict=True)]
    print(f"\n{'ours - floor':18}" + "".join(f"{o - f:22.1f}" for o, f in zip(ours, table["floor"], strict=True)))


if __name__ == "__main__":
    main()
