"""Helpers every latency benchmark here shares (imported from the script's own directory)."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import claif_cod
from claif_cod.testing import write_codex_home


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def codex_version(codex: str) -> str:
    out = subprocess.run([codex, "--version"], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "claif_cod": claif_cod.__version__,
    }


def run_header(load_start: float, what: str) -> str:
    """The two lines a benchmark's report starts with: the machine, and the load it ran under."""
    return (
        "Machine: {platform}, {cpu_count} CPUs, Python {python}, claif_cod {claif_cod}\n".format(**machine())
        + f"Load average (1 min) at start {load_start:.2f}, at end {os.getloadavg()[0]:.2f}; {what}"
    )


Step = TypeVar("Step")


def round_orders(steps: Sequence[Step], seed: int = 0) -> Iterator[list[Step]]:
    """The order of each round's steps: a new random permutation every round (seeded, so a run can be
    repeated). Rotating a fixed list is not enough: each step would always follow the same step,
    and the work a turn leaves behind (Codex's writes, a daemon's bookkeeping) would always fall on
    the same row."""
    rng = random.Random(seed)
    while True:
        order = list(steps)
        rng.shuffle(order)
        yield order


def median_interval(samples: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95% bootstrap interval for the median of ``samples`` (seeded, so a run can be repeated):
    whether a median difference is below a goal, or only looks so in this run."""
    rng = random.Random(seed)
    n = len(samples)
    medians = sorted(statistics.median(rng.choices(samples, k=n)) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("need at least 2 turns for a p90")
    return value


def private_home(root: Path) -> Path:
    """Give this process and every Codex it starts an empty ``HOME`` under ``root``.

    Codex runs the user's login shell (``bash -lc``) to learn its environment; a machine's own
    ``~/.bashrc`` (a ``pyenv rehash``, say) then runs on every spawn and thread start, which is
    noise for the benchmark, not a cost of claif_cod or Codex. The tests isolate ``HOME`` the same way.
    """
    home = root / "user-home"
    home.mkdir(mode=0o700, exist_ok=True)
    os.environ["HOME"] = str(home)
    return home


SYSTEM_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def one_ca_store(root: Path) -> None:
    """Give every Codex this process starts a trust store of one certificate (``SSL_CERT_FILE``,
    and an empty ``SSL_CERT_DIR``): Codex loads its whole trust store three times a turn, about
    half of a warm turn's time and much of its variance (see bench/README.md, "Codex's CA store").
    The offline model is plain ``http://``, so no turn needs it; every row gets the same."""
    bundle = next((Path(p) for p in SYSTEM_CA_BUNDLES if Path(p).is_file()), None)
    if bundle is None:
        raise SystemExit("--one-ca: no system CA bundle found to take one certificate from")
    end = "-----END CERTIFICATE-----"
    text = bundle.read_text()
    (root / "one-ca.pem").write_text(
        text[text.index("-----BEGIN CERTIFICATE-----") : text.index(end) + len(end)] + "\n"
    )
    (root / "no-certs").mkdir()
    os.environ["SSL_CERT_FILE"] = str(root / "one-ca.pem")
    os.environ["SSL_CERT_DIR"] = str(root / "no-certs")


def offline_workdir(root: Path, model_url: str) -> Path:
    """A private ``HOME`` (see :func:`private_home`) and a ``CODEX_HOME`` whose model is the offline
    one at ``model_url``, for this process and every Codex it starts, under ``root``; returns a new
    working directory there."""
    private_home(root)
    os.environ["CODEX_HOME"] = str(write_codex_home(root / "codex-home", model_url))
    workdir = root / "work"
    workdir.mkdir()
    return workdir


_MODEL_SERVER = """
import sys
from claif_cod.testing import ModelServer, model_server
model_server._HTTPServer.request_queue_size = 1024
with ModelServer() as server:
    print(server.url, flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def model_server_process() -> Iterator[tuple[str, int]]:
    """The offline model in a child process of its own: its URL and pid.

    In the benchmark's own process it would share the GIL with the client under test, so the
    more Python work a client does while Codex waits for the model, the slower the model would
    answer (a remote model has no such tie).  The deep listen backlog keeps hundreds of
    concurrent turns from waiting on SYN retransmits in the kernel.
    """
    with subprocess.Popen(  # leaving it closes the pipes too
        [sys.executable, "-c", _MODEL_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            if not url:
                raise RuntimeError("the model server did not start")
            yield url, proc.pid
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
