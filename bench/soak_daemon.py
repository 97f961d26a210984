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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soak_client import Conn

from claif_cod.protocol import DaemonStatus, DaemonStatusRequest, Response, decode_result
from claif_cod.testing.daemon import start_daemon, stop_daemon

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
        self.proc = start_daemon(
            self.socket, self.state_dir, self.log, self.env, ["--log-format", "json", "--log-level", "info"]
        )

    def stop(self) -> int | None:
        """The exit code (negative: the signal that ended it, SIGKILL when it hung); None if never started."""
        return None if self.proc is None else stop_daemon(self.proc)

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
