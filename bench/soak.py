"""Soak: many concurrent clients streaming through one claif-codd, then back to baseline.

What runs: one ``claif-codd serve`` on a private socket in a temporary directory, the offline
test model (``claif_cod.testing.ModelServer``) in a child process of its own (so its threads
don't compete with the clients for this process's GIL), and ``--clients`` simulated clients in
this process's event loop. Each client is one raw socket connection speaking the protocol
through ``claif_cod.protocol`` alone (framing, codec, message structs; no ``AsyncCodexClient``):
``hello``, then ``--requests`` streaming ``chat.completions.create`` calls in sequence, each one
continuing that client's conversation (history plus the last reply plus a new user message, so
the daemon reuses the client's warm Codex thread), then it disconnects. Clients are spread over
``--dirs`` working directories, i.e. that many Codex processes. With ``--rounds N`` all of that
happens N times, each round reconnecting every client and continuing its conversation: round 1
brings the daemon to its steady state, later rounds show whether anything still grows.

Every reply is checked: the model answers ``[[long:N]]`` with the N words ``w1 … wN``, one
delta each, so a request must see exactly N content chunks whose text joins to that reply, and
the ``StreamDone`` result must count every chunk notification the client received. Anything
else is an error (so is an error response, a dropped connection or a timeout).

Around the run it samples the daemon's file descriptors (``/proc/<pid>/fd``), RSS and OS threads
(``/proc/<pid>/status``) and its asyncio tasks (``daemon.stats``, logged on SIGUSR1): at the
baseline (after one warm-up request per directory, so the Codex processes exist), their peak
during the soak, and after each round once every client has disconnected and no turn runs. The
run passes when every request succeeded, no chunk was lost, fds, threads and tasks are back at
the baseline after every round and the final RSS is within ``--rss-tolerance`` MiB of it.

Run it with ``python bench/soak.py [--clients N] [--requests N] [--rounds N] [--json PATH]``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import claif_cod
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    ChatCompletionsChunkNotification,
    ChatCompletionsCreateParams,
    ChatCompletionsCreateRequest,
    CodexOptions,
    DaemonStatus,
    DaemonStatusRequest,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    Request,
    Response,
    StreamDone,
    decode,
    decode_result,
    encode,
    encode_frame,
)
from claif_cod.testing import write_codex_home
from claif_cod.transport.autostart import answers

MODEL = "o4-mini"
REQUEST_TIMEOUT_S = 120.0
DAEMON_START_TIMEOUT_S = 20.0
DAEMON_STOP_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 30.0
MiB = 2**20

# The test model is a ThreadingHTTPServer with socketserver's listen backlog of 5: with hundreds of
# turns asking it at once, connections would wait for SYN retransmits (or fail) in the kernel and the
# soak would measure that. A deeper backlog keeps the model out of the picture.
MODEL_SERVER = """
import sys
from claif_cod.testing import ModelServer, model_server
model_server._HTTPServer.request_queue_size = 1024
with ModelServer() as server:
    print(server.url, flush=True)
    sys.stdin.read()
"""


# --- one simulated client --------------------------------------------------------------------------


class Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        self.items.append(text)


@dataclass
class Totals:
    requests_ok: int = 0
    requests_failed: int = 0
    chunks_expected: int = 0
    content_chunks: int = 0
    notifications: int = 0
    lost_chunks: int = 0
    first_chunk_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    per_request: list[tuple[int, int, float, float]] = field(default_factory=list)
    """(client, turn of its conversation, ms since the run started at the request, ms to complete)."""
    started: float = field(default_factory=time.perf_counter)


class Conn:
    """A protocol-only connection that handles one request at a time, as each simulated client does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.frames: list[bytes] = []
        self.ids = 0

    @classmethod
    async def open(cls, socket_path: Path, name: str) -> Conn:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        conn = cls(reader, writer)
        params = HelloParams(protocol_version=PROTOCOL_VERSION, package_version=claif_cod.__version__, client_name=name)
        conn.send(HelloRequest(id=conn.next_id(), params=params))
        reply = await conn.receive()
        if not isinstance(reply, Response):
            raise RuntimeError(f"hello refused: {reply}")
        return conn

    def next_id(self) -> int:
        self.ids += 1
        return self.ids

    def send(self, request: Request) -> None:
        self.writer.write(encode_frame(encode(request)))

    async def receive(self) -> Any:
        while not self.frames:
            data = await self.reader.read(256 * 1024)
            if not data:
                raise ConnectionResetError("claif-codd closed the connection")
            self.frames.extend(self.decoder.feed(data))
        return decode(self.frames.pop(0))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def reply_text(words: int) -> str:
    return " ".join(f"w{i}" for i in range(1, words + 1))


async def stream_once(conn: Conn, messages: list[dict[str, str]], workdir: str, words: int, totals: Totals) -> str:
    """One streamed chat; returns the reply text, adding what was seen to ``totals``."""
    request_id = conn.next_id()
    body = {"model": MODEL, "stream": True, "messages": messages}
    params = ChatCompletionsCreateParams(
        body=msgspec.Raw(msgspec.json.encode(body)), options=CodexOptions(working_dir=workdir)
    )
    started = time.perf_counter()
    conn.send(ChatCompletionsCreateRequest(id=request_id, params=params))
    notifications = content = 0
    text: list[str] = []
    first: float | None = None
    while True:
        message = await conn.receive()
        if isinstance(message, ChatCompletionsChunkNotification) and message.params.request_id == request_id:
            notifications += 1
            chunk = msgspec.json.decode(message.params.chunk)
            delta = chunk["choices"][0]["delta"].get("content") if chunk.get("choices") else None
            if delta:
                content += 1
                text.append(delta)
                if first is None:
                    first = time.perf_counter()
        elif isinstance(message, ErrorResponse) and message.id == request_id:
            raise RuntimeError(f"error {message.error.code}: {message.error.message}")
        elif isinstance(message, Response) and message.id == request_id:
            done = decode_result(message.result, StreamDone)
            break
    finished = time.perf_counter()
    totals.notifications += notifications
    totals.content_chunks += content
    totals.chunks_expected += words
    totals.lost_chunks += max(0, words - content) + max(0, done.chunks - notifications)
    totals.complete_ms.append((finished - started) * 1000)
    if first is not None:
        totals.first_chunk_ms.append((first - started) * 1000)
    reply = "".join(text)
    if content != words or done.chunks != notifications or reply != reply_text(words):
        raise RuntimeError(
            f"stream mismatch: {content}/{words} content chunks, done.chunks {done.chunks} vs {notifications} received"
        )
    return reply


@dataclass
class Conversation:
    """One simulated client's chat history; it carries over from round to round."""

    index: int
    workdir: str
    messages: list[dict[str, str]] = field(default_factory=list)
    turns: int = 0


async def simulated_client(
    conversation: Conversation, socket_path: Path, requests: int, words: int, totals: Totals, errors: Errors
) -> None:
    """Connect, say hello, stream ``requests`` turns of the conversation one after another, disconnect."""
    index = conversation.index
    try:
        conn = await Conn.open(socket_path, f"soak-{index}")
    except Exception as exc:
        errors.add(f"client {index}: connect/hello: {type(exc).__name__}: {exc}")
        totals.requests_failed += requests
        return
    try:
        for left in range(requests, 0, -1):
            turn = conversation.turns
            asked = [
                *conversation.messages,
                {"role": "user", "content": f"client {index} turn {turn} [[long:{words}]]"},
            ]
            try:
                reply = await asyncio.wait_for(
                    stream_once(conn, asked, conversation.workdir, words, totals), REQUEST_TIMEOUT_S
                )
            except Exception as exc:
                errors.add(f"client {index} turn {turn}: {type(exc).__name__}: {exc}")
                totals.requests_failed += 1
                if isinstance(exc, (ConnectionError, asyncio.TimeoutError)):
                    totals.requests_failed += left - 1
                    return
                continue
            totals.requests_ok += 1
            complete = totals.complete_ms[-1]
            totals.per_request.append(
                (index, turn, round((time.perf_counter() - totals.started) * 1000 - complete), complete)
            )
            conversation.messages = [*asked, {"role": "assistant", "content": reply}]
            conversation.turns += 1
    finally:
        await conn.close()


# --- the daemon and what it holds ------------------------------------------------------------------------


@dataclass
class Sample:
    fds: int
    rss: int
    threads: int
    tasks: int | None = None


@dataclass
class Daemon:
    socket: Path
    state_dir: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "claif_codd",
            "serve",
            "--socket",
            str(self.socket),
            "--state-dir",
            str(self.state_dir),
            "--log-format",
            "json",
            "--log-level",
            "info",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        while not answers(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"claif-codd did not start:\n{self.log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(DAEMON_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def sample(self) -> Sample:
        status = Path(f"/proc/{self.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return Sample(
            fds=len(os.listdir(f"/proc/{self.pid}/fd")),
            rss=int(fields["VmRSS"].split()[0]) * 1024,
            threads=int(fields["Threads"]),
        )

    async def tasks(self) -> int | None:
        """The daemon's asyncio task count, from the ``daemon.stats`` line it logs on SIGUSR1."""
        before = len(self.stats_lines())
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = self.stats_lines()
            if len(lines) > before:
                return int(lines[-1]["tasks"])
            await asyncio.sleep(0.02)
        return None

    def stats_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            if '"daemon.stats"' in line:
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    async def full_sample(self) -> Sample:
        tasks = await self.tasks()
        sample = self.sample()
        sample.tasks = tasks
        return sample

    async def status(self) -> DaemonStatus:
        conn = await Conn.open(self.socket, "soak-status")
        try:
            conn.send(DaemonStatusRequest(id=conn.next_id()))
            reply = await conn.receive()
            assert isinstance(reply, Response), reply
            return decode_result(reply.result, DaemonStatus)
        finally:
            await conn.close()

    async def settle(self) -> DaemonStatus:
        """Wait until no client is connected (but the status probe) and no turn runs."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            status = await self.status()
            if (status.connections <= 1 and status.turns_in_flight == 0) or time.monotonic() > deadline:
                await asyncio.sleep(0.3)  # let the probe's own connection close
                return status
            await asyncio.sleep(0.1)

    def log_warnings(self) -> list[str]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if '"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line:
                out.append(line)
        return out


@contextlib.contextmanager
def model_server() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", MODEL_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        if not url.startswith("http"):
            raise RuntimeError("the model server did not start")
        yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the run ---------------------------------------------------------------------------------------------


@dataclass
class Results:
    clients: int
    requests: int
    dirs: int
    words: int
    rounds: int
    seconds: float = 0.0
    totals: Totals = field(default_factory=Totals)
    errors: list[str] = field(default_factory=list)
    baseline: Sample | None = None
    peak: Sample | None = None
    after_rounds: list[Sample] = field(default_factory=list)
    after_status: dict[str, Any] = field(default_factory=dict)
    daemon_warnings: list[str] = field(default_factory=list)
    daemon_exit: int | None = None
    rss_tolerance: int = 0
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def after(self) -> Sample | None:
        return self.after_rounds[-1] if self.after_rounds else None

    @property
    def back_to_baseline(self) -> dict[str, bool]:
        """fds, OS threads and tasks at the baseline after every round; RSS within tolerance at the end."""
        base, afters = self.baseline, self.after_rounds
        assert base is not None
        assert afters
        return {
            "fds": all(a.fds <= base.fds for a in afters),
            "threads": all(a.threads <= base.threads for a in afters),
            "tasks": base.tasks is not None and all(a.tasks is not None and a.tasks <= base.tasks for a in afters),
            "rss": afters[-1].rss - base.rss <= self.rss_tolerance,
        }

    @property
    def passed(self) -> bool:
        return (
            not self.errors
            and self.totals.lost_chunks == 0
            and self.totals.requests_ok == self.clients * self.requests * self.rounds
            and all(self.back_to_baseline.values())
        )


async def sample_peak(daemon: Daemon, peak: Sample, stop: asyncio.Event) -> None:
    """fds, RSS and threads every 0.25 s; tasks every second (each a SIGUSR1 and a log line)."""
    ticks = 0
    while not stop.is_set():
        now = daemon.sample()
        peak.fds, peak.rss, peak.threads = (
            max(peak.fds, now.fds),
            max(peak.rss, now.rss),
            max(peak.threads, now.threads),
        )
        if ticks % 4 == 0:
            os.kill(daemon.pid, signal.SIGUSR1)
        ticks += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def soak(daemon: Daemon, dirs: list[Path], results: Results) -> None:
    warm = Totals()
    for i, workdir in enumerate(dirs):  # start every Codex process before the baseline
        conn = await Conn.open(daemon.socket, "soak-warmup")
        try:
            await stream_once(conn, [{"role": "user", "content": f"warm-up {i} [[long:3]]"}], str(workdir), 3, warm)
        finally:
            await conn.close()
    await daemon.settle()
    results.baseline = await daemon.full_sample()
    peak = Sample(results.baseline.fds, results.baseline.rss, results.baseline.threads)
    conversations = [Conversation(i, str(dirs[i % len(dirs)])) for i in range(results.clients)]
    results.totals.started = time.perf_counter()
    errors = Errors()
    tasks_peak: list[int] = []
    for round_number in range(1, results.rounds + 1):
        progress(f"round {round_number}/{results.rounds}: {results.clients} clients x {results.requests} requests")
        stats_before = len(daemon.stats_lines())
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_peak(daemon, peak, stop))
        started = time.perf_counter()
        await asyncio.gather(
            *(
                simulated_client(c, daemon.socket, results.requests, results.words, results.totals, errors)
                for c in conversations
            )
        )
        results.seconds += time.perf_counter() - started
        stop.set()
        await sampler
        tasks_peak += [int(line["tasks"]) for line in daemon.stats_lines()[stats_before:]]
        status = await daemon.settle()
        results.after_status = msgspec.to_builtins(status)
        results.after_rounds.append(await daemon.full_sample())
    peak.tasks = max(tasks_peak, default=None)
    results.peak = peak
    results.errors = errors.items


def progress(text: str) -> None:
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "claif_cod": claif_cod.__version__,
    }


def percentile(samples: Sequence[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def render(results: Results) -> str:
    t = results.totals
    total = results.clients * results.requests * results.rounds
    lines = [
        f"Machine: {results.machine['platform']}, {results.machine['cpus']} CPUs, "
        f"Python {results.machine['python']}, claif_cod {results.machine['claif_cod']}",
        f"Soak:    {results.clients} clients x {results.requests} streaming requests x {results.rounds} round(s) over "
        f"{results.dirs} working directories, {results.words} words per reply; {results.seconds:.1f} s, "
        f"{t.requests_ok / results.seconds if results.seconds else 0:.1f} requests/s",
        "",
        f"{'requests ok':<28}{t.requests_ok:>10} / {total}",
        f"{'requests failed':<28}{t.requests_failed:>10}",
        f"{'content chunks':<28}{t.content_chunks:>10} / {t.chunks_expected} expected",
        f"{'chunk notifications':<28}{t.notifications:>10}",
        f"{'lost chunks':<28}{t.lost_chunks:>10}",
    ]
    if t.complete_ms:
        lines += [
            f"{'first chunk ms p50 / p99':<28}{percentile(t.first_chunk_ms, 50):>10.1f} / "
            f"{percentile(t.first_chunk_ms, 99):.1f}",
            f"{'complete ms p50 / p99':<28}{percentile(t.complete_ms, 50):>10.1f} / "
            f"{percentile(t.complete_ms, 99):.1f}",
        ]
        first_turns = [ms for _, turn, _, ms in t.per_request if turn == 0]
        later_turns = [ms for _, turn, _, ms in t.per_request if turn > 0]
        for label, samples in (
            ("  turn 1 (new Codex thread)", first_turns),
            ("  later turns (warm thread)", later_turns),
        ):
            if samples:
                lines.append(f"{label:<28}{percentile(samples, 50):>10.1f} / {percentile(samples, 99):.1f}")
    if results.baseline and results.peak and results.after:
        b, p = results.baseline, results.peak
        afters = results.after_rounds
        ok = results.back_to_baseline

        def row(name: str, values: list[str], verdict: bool, note: str = "") -> str:
            return f"{name:<14}" + "".join(f"{v:>12}" for v in values) + f"  {'yes' if verdict else 'NO'}{note}"

        def tasks(sample: Sample) -> str:
            return "?" if sample.tasks is None else str(sample.tasks)

        heads = [
            "baseline",
            "peak",
            *(f"after r{i}" if len(afters) > 1 else "after" for i in range(1, len(afters) + 1)),
        ]
        growth = (results.after.rss - b.rss) / MiB
        rss_note = f" (last - baseline {growth:+.1f} MiB, tolerance {results.rss_tolerance / MiB:.0f})"
        lines += [
            "",
            f"{'daemon':<14}" + "".join(f"{h:>12}" for h in heads) + "  back to baseline",
            "-" * (14 + 12 * len(heads) + 18),
            row("fds", [str(x.fds) for x in (b, p, *afters)], ok["fds"]),
            row("threads", [str(x.threads) for x in (b, p, *afters)], ok["threads"]),
            row("asyncio tasks", [tasks(x) for x in (b, p, *afters)], ok["tasks"]),
            row("RSS MiB", [f"{x.rss / MiB:.1f}" for x in (b, p, *afters)], ok["rss"], rss_note),
            "(peaks: fds, RSS and threads sampled every 0.25 s, asyncio tasks every 1 s; 'after' once every client",
            " has disconnected and no turn runs)",
        ]
    status = results.after_status
    if status:
        lines.append(
            f"After: {status['connections']} connections (the status probe), {status['turns_in_flight']} turns "
            f"in flight, {len(status['processes'])} Codex processes."
        )
    lines.append(
        f"Daemon warnings/errors in its log: {len(results.daemon_warnings)}; exit code after SIGTERM: "
        f"{results.daemon_exit}."
    )
    lines.append("PASS" if results.passed else "FAIL")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=200, help="concurrent simulated clients (default 200)")
    parser.add_argument("--requests", type=int, default=5, help="streaming requests per client and round (default 5)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds; each reconnects every client and continues its conversation (default 2)",
    )
    parser.add_argument("--dirs", type=int, default=4, help="working directories, i.e. Codex processes (default 4)")
    parser.add_argument("--words", type=int, default=16, help="words per reply = content chunks (default 16)")
    parser.add_argument(
        "--rss-tolerance",
        type=float,
        default=16.0,
        help="MiB the daemon's RSS may stay above the baseline after the run (default 16)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if min(args.clients, args.requests, args.rounds, args.dirs, args.words) < 1:
        parser.error("--clients, --requests, --rounds, --dirs and --words must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results(
        clients=args.clients,
        requests=args.requests,
        rounds=args.rounds,
        dirs=args.dirs,
        words=args.words,
        rss_tolerance=int(args.rss_tolerance * MiB),
        machine=machine(),
    )
    with tempfile.TemporaryDirectory(prefix="claif-soak-") as tmp, model_server() as url:
        root = Path(tmp)
        home = write_codex_home(root / "codex_home", url)
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        dirs = [root / f"wd{i}" for i in range(args.dirs)]
        for d in dirs:
            d.mkdir()
        env = {**os.environ, "CODEX_HOME": str(home)}
        env.pop("CLAIF_COD_SOCKET", None)
        daemon = Daemon(socket=run_dir / "codd.sock", state_dir=root / "state", log=root / "codd.log", env=env)
        daemon.start()
        try:
            asyncio.run(soak(daemon, dirs, results))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            results.daemon_exit = daemon.stop()
            results.daemon_warnings = daemon.log_warnings()
    print(render(results))
    for error in results.errors[:10]:
        print(f"  error: {error}")
    for line in results.daemon_warnings[:10]:
        print(f"  daemon: {line[:300]}")
    if args.json is not None:
        payload = asdict(results)
        payload["back_to_baseline"] = results.back_to_baseline if results.after else None
        payload["passed"] = results.passed
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if results.passed else 1


if __name__ == "__main__":
    sys.exit(main())
