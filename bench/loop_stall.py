"""What one client's large image costs another client's stream on the same daemon.

Two clients of one private ``claif-codd``, each in a process and a working directory of its own (so
each has a Codex process of its own, and the two share no GIL): ``A`` streams a paced answer (the
offline model waits ``--pace`` ms before each of its ``--words`` words); in ``busy`` rounds ``B``,
once A's first chunk is in, sends a chat turn with a ``data:`` URL image of ``--image-mb`` MB (a real PNG of random
pixels).  Every gap between two of A's chunks is timed: a gap well over the pace is A's stream held
up, by the daemon's event loop, which both clients' requests share (decoding B's image, say), or by
the machine (B's Codex reads the image and sends it to the model while A's streams: 2 cores).
``quiet`` rounds (B idle) take turns with busy ones.

Each ``--source LABEL=DIR`` is a checkout of claif_cod whose ``claif-codd`` serves its rounds (the
clients are this checkout's); the sources take turns round by round, in an order swapped every
round.  The table gives, per source and kind of round, the medians over rounds of A's longest gap
and of the time A was held up (every gap's excess over twice the pace, summed: two stalls of 60 ms
hold A up 120 ms, though its longest gap is 60), A's 99th-percentile gap over all rounds, and B's
turn; then each source's busy - quiet differences of the first two, paired by round, with their 95%
bootstrap intervals.  Nothing asserts on time.
Run: ``python bench/loop_stall.py [--source LABEL=DIR ...] [--rounds 15] [--pace 5] [--words 60]
[--image-mb 9]``.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_common import at_least_two, median_interval, model_server_process, offline_workdir, run_header
from offline_chat import MODEL

from claif_cod import CodexClient
from claif_cod.testing.daemon import start_daemon, stop_daemon

HERE = Path(__file__).resolve().parent.parent
_B = """
import sys, time
from claif_cod import CodexClient
workdir, model, image = sys.argv[1], sys.argv[2], sys.stdin.readline().strip()
content = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": image}}]
with CodexClient(working_dir=workdir, daemon="require", model=model) as client:
    client.chat.completions.create(messages=[{"role": "user", "content": "warm up"}])
    print("ready", flush=True)
    for line in sys.stdin:
        start = time.perf_counter()
        client.chat.completions.create(messages=[{"role": "user", "content": content}])
        print((time.perf_counter() - start) * 1000, flush=True)
"""


def png_data_url(megabytes: float) -> str:
    """A PNG of random RGB pixels, stored uncompressed (so its size is what was asked), as a data: URL."""
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5)
    rows = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()


@dataclass
class Source:
    """A checkout's daemon, on a socket of its own, A's client and B's process."""

    label: str
    root: Path
    scratch: Path
    proc: Any = None
    a: CodexClient | None = None
    b: subprocess.Popen[str] | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    """``{kind}/longest``, ``{kind}/held``, ``{kind}/gaps`` (every gap) and ``{kind}/b``, in ms."""

    def start(self, workdirs: tuple[Path, Path], image: str) -> None:
        run = self.scratch / f"run-{self.label}"
        run.mkdir(mode=0o700)
        socket = run / "codd.sock"
        path = [str(self.root), str(self.root / "daemon"), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        log = self.scratch / f"codd-{self.label}.log"
        self.proc = start_daemon(socket, self.scratch / f"state-{self.label}", log, env)
        os.environ["CLAIF_COD_SOCKET"] = str(socket)  # read by A's first request, below, and by B
        self.b = subprocess.Popen(
            [sys.executable, "-c", _B, str(workdirs[1]), MODEL],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.a = CodexClient(working_dir=workdirs[0], daemon="require", model=MODEL)
        self.a.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "warm up"}])  # its Codex warm
        assert self.b.stdin is not None
        assert self.b.stdout is not None
        self.b.stdin.write(image + "\n")
        self.b.stdin.flush()
        if self.b.stdout.readline() != "ready\n":
            raise RuntimeError("B's process did not start")

    def stop(self) -> None:
        if self.a is not None:
            self.a.close()
        if self.b is not None:
            if self.b.stdin is not None:
                self.b.stdin.close()
            self.b.wait(30)
        if self.proc is not None:
            stop_daemon(self.proc)


def one_run(source: Source, busy: bool, pace: int, words: int) -> None:
    """A's paced stream, with B's image turn sent once A's first chunk is in if ``busy``."""
    assert source.a is not None
    assert source.b is not None
    assert source.b.stdin is not None
    assert source.b.stdout is not None
    kind = "busy" if busy else "quiet"
    text = " ".join(f"w{i}" for i in range(words)) + f" [[slow:{pace}]]"
    arrivals: list[float] = []
    stream = source.a.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
            if busy and len(arrivals) == 1:
                source.b.stdin.write("go\n")
                source.b.stdin.flush()
    if busy:
        source.samples.setdefault(f"{kind}/b", []).append(float(source.b.stdout.readline()))
    gaps = [(later - earlier) * 1000 for earlier, later in itertools.pairwise(arrivals)]
    assert gaps, "A's stream came in one chunk: raise --words"
    source.samples.setdefault(f"{kind}/longest", []).append(max(gaps))
    source.samples.setdefault(f"{kind}/held", []).append(sum(max(0.0, gap - 2 * pace) for gap in gaps))
    source.samples.setdefault(f"{kind}/gaps", []).extend(gaps)


def report(sources: list[Source], pace: int) -> None:
    print(f"\nA's stream (pace {pace} ms a word): the longest gap between two chunks and the time held up")
    print(f"(every gap's excess over {2 * pace} ms, summed), medians over rounds; the 99th-percentile gap over")
    print("every round; B's image turn, median ms")
    print(f"  {'source':<12} {'rounds':<7} {'longest gap':>12} {'held up':>8} {'p99 gap':>9} {'B turn':>8}")
    for source in sources:
        for kind in ("quiet", "busy"):
            longest = source.samples[f"{kind}/longest"]
            gaps = sorted(source.samples[f"{kind}/gaps"])
            p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
            b = source.samples.get(f"{kind}/b")
            b_text = f"{statistics.median(b):8.1f}" if b else f"{'-':>8}"
            held = statistics.median(source.samples[f"{kind}/held"])
            print(f"  {source.label:<12} {kind:<7} {statistics.median(longest):12.1f} {held:8.1f} {p99:9.1f} {b_text}")
    print("\nbusy - quiet, paired by round: median [95% interval] ms")
    print(f"  {'source':<12} {'longest gap':>22} {'held up':>22}")
    for source in sources:
        cells = []
        for metric in ("longest", "held"):
            busy, quiet = source.samples[f"busy/{metric}"], source.samples[f"quiet/{metric}"]
            pairs = [b - q for b, q in zip(busy, quiet, strict=True)]
            low, high = median_interval(pairs)
            cells.append(f"{statistics.median(pairs):+7.1f} [{low:+.1f}, {high:+.1f}]")
        print(f"  {source.label:<12} {cells[0]:>22} {cells[1]:>22}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--source", action="append", metavar="LABEL=DIR", help="default: this checkout")
    parser.add_argument("--rounds", type=at_least_two, default=15)
    parser.add_argument("--pace", type=int, default=5, metavar="MS", help="the model's wait before each word")
    parser.add_argument("--words", type=int, default=60, help="words in A's answer")
    parser.add_argument("--image-mb", type=float, default=9.0, help="B's image, in MB (the daemon takes 16 MB frames)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    image = png_data_url(args.image_mb)
    specs = args.source or [f"this={HERE}"]
    with model_server_process() as (model_url, _), tempfile.TemporaryDirectory(prefix="claif-cod-stall-") as tmp:
        scratch = Path(tmp)
        workdir = offline_workdir(scratch, model_url)
        workdirs = (workdir / "a", workdir / "b")
        for path in workdirs:
            path.mkdir()
        sources = [Source(label, Path(root).resolve(), scratch) for label, root in (s.split("=", 1) for s in specs)]
        try:
            for source in sources:
                source.start(workdirs, image)
            for round_no in range(args.rounds):
                for source in sources[:: -1 if round_no % 2 else 1]:
                    for busy in (round_no % 2 == 0, round_no % 2 != 0):
                        one_run(source, busy, args.pace, args.words)
        finally:
            for source in sources:
                source.stop()
    what = f"{args.rounds} rounds, each source's quiet and busy runs in turn; B's image {args.image_mb:g} MB"
    print(run_header(load_start, what))
    report(sources, args.pace)


if __name__ == "__main__":
    main()
