"""The daemon under soak and what it holds: ``claif-codd serve`` on a private socket, its file
descriptors, RSS, OS threads and asyncio tasks (sampled from ``/proc`` and its SIGUSR1 stats line),
beside the offline test model (``bench_common.model_server_process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soak_client import Conn

from claif_cod.protocol import DaemonStatus, DaemonStatusRequest, Response, decode_result
from claif_cod.transport.autostart import answers

DAEMON_START_TIMEOUT_S = 20.0
DAEMON_STOP_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 30.0


@dataclass
class Sample:
    fds: int
    rss: int
    threads: int
    tasks: int | None = None
    heap_blocks: int | None = None
    """CPython's live allocations after a garbage collection (``sys.getallocatedblocks()``)."""


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

    async def stats(self) -> dict[str, Any] | None:
        """The ``daemon.stats`` line the daemon logs on SIGUSR1 (asyncio tasks, heap blocks...)."""
        before = len(self.stats_lines())
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = self.stats_lines()
            if len(lines) > before:
                return lines[-1]
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
        stats = await self.stats()
        sample = self.sample()
        if stats is not None:
            sample.tasks, sample.heap_blocks = int(stats["tasks"]), int(stats["heap_blocks"])
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
