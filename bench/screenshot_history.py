"""An agent loop's transcript of screenshots, re-sent whole with every ``responses.create``: what
keeping each response's input costs, in-process and through the daemon.

Agent libraries send the whole transcript each turn, and each stored response keeps its input
(``responses.input_items.list``): in the daemon, in ``responses.db``. Each round takes, in a new
random order, one request per row: in-process and through the daemon's socket, with ``store`` true
(the default) and false. Every request carries the same history (``--images`` PNG screenshots of
``--image-kb`` each, each with the model's reply) and a new question; every answer is checked.
The rows' differences are what to compare: ``store`` true minus false is what keeping the input costs
(in the daemon: writing it to ``responses.db``, on its event loop). Nothing asserts on time. Run:
``python bench/screenshot_history.py [--rounds 8] [--images 10] [--image-kb 700]``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_common import median_interval, model_server_process, offline_workdir, round_orders, run_header
from private_daemon import sigterm_as_interrupt, started_in

from claif_cod import CodexClient

MODEL = "o4-mini"


def png(size: int, seed: int) -> bytes:
    """A valid PNG of about ``size`` bytes (uncompressed pixels), different for each ``seed``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    side = int((size / 3) ** 0.5)
    rows = b"".join(b"\0" + bytes((x * 7 + y + seed) % 251 for x in range(side * 3)) for y in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")


def transcript(images: int, image_bytes: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(images):
        url = "data:image/png;base64," + base64.b64encode(png(image_bytes, n)).decode()
        look = [{"type": "input_text", "text": f"screen {n}"}, {"type": "input_image", "image_url": url}]
        items += [{"role": "user", "content": look}, {"role": "assistant", "content": f"seen {n}"}]
    return items


def timed(client: CodexClient, history: list[dict[str, Any]], store: bool, turn: int) -> float:
    question = f"question {turn}"
    start = time.perf_counter()
    items: Any = [*history, {"role": "user", "content": question}]  # openai's TypedDicts, built as plain dicts
    response = client.responses.create(model=MODEL, input=items, store=store)
    took = (time.perf_counter() - start) * 1e3
    if not response.output_text.endswith(f"Echo: {question}"):
        raise SystemExit(f"unexpected answer: {response.output_text[:200]!r}")
    return took


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--image-kb", type=int, default=700)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    history = transcript(args.images, args.image_kb * 1024)
    with (
        sigterm_as_interrupt(),
        model_server_process() as (url, _),
        tempfile.TemporaryDirectory(prefix="claif-cod-screens-") as scratch,
        contextlib.ExitStack() as cleanup,
    ):
        root = Path(scratch)
        workdir = offline_workdir(root, url)
        started_in(root, cleanup)
        clients = {
            "in-process": CodexClient(daemon="off", working_dir=str(workdir)),
            "daemon": CodexClient(daemon="require", working_dir=str(workdir)),
        }
        for client in clients.values():
            cleanup.callback(client.close)
        rows = [(where, store) for where in clients for store in (True, False)]
        times: dict[tuple[str, bool], list[float]] = {row: [] for row in rows}
        turn = 0
        for where, store in rows:  # warm: the processes, the decoded images
            turn += 1
            timed(clients[where], history, store, turn)
        for _, order in zip(range(args.rounds), round_orders(rows), strict=False):
            for where, store in order:
                turn += 1
                times[(where, store)].append(timed(clients[where], history, store, turn))
    size = sum(len(str(item)) for item in history) / 1e6
    print(run_header(load_start, f"{args.rounds} rounds, one request per row each, in a new random order"))
    print(f"\nhistory: {args.images} screenshots of {args.image_kb} KB and their replies (~{size:.1f} MB of JSON)")
    print("median ms per request [95% interval]")
    for (where, store), samples in times.items():
        low, high = median_interval(samples)
        print(f"  {where:<11} store={str(store).lower():<6} {statistics.median(samples):7.1f} [{low:.1f}, {high:.1f}]")
    for where in clients:
        kept = [a - b for a, b in zip(times[(where, True)], times[(where, False)], strict=True)]
        low, high = median_interval(kept)
        paired = f"{statistics.median(kept):+.1f} [{low:+.1f}, {high:+.1f}]"
        print(f"  {where}: store true minus false, paired by round: {paired}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
