"""A claif-codd process under test: started, killed and stopped like a user or systemd would."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waiting import wait_until

from claif_cod.protocol import DaemonStatus, DaemonStatusRequest, decode_result
from claif_cod.testing.daemon import start_daemon, stop_daemon
from claif_cod.transport.blocking_connection import BlockingConnection
from claif_cod.transport.daemon_client import DaemonConnection


@dataclass
class DaemonProcess:
    socket: Path
    state_dir: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        self.proc = start_daemon(self.socket, self.state_dir, self.log, self.env, ["--log-level", "debug", *extra])

    def status(self) -> DaemonStatus:
        """``daemon.status`` over the socket, typed."""

        async def call() -> DaemonStatus:
            conn = await DaemonConnection.open(self.socket, client_name="test")
            try:
                return decode_result(await conn.call(DaemonStatusRequest(id=conn.next_id())), DaemonStatus)
            finally:
                await conn.close()

        return asyncio.run(call())

    def status_json(self) -> dict[str, Any]:
        """``claif-codd status --json``, as a user runs it."""
        out = subprocess.run(
            [sys.executable, "-m", "claif_codd", "status", "--json", "--socket", str(self.socket)],
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
            timeout=60,
        )
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def kill9(self) -> None:
        """Kill the daemon and (as a crash would leave them) its Codex children's group too."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        return stop_daemon(self.proc)


def full_daemon(daemon: DaemonProcess) -> BlockingConnection:
    """The daemon restarted with room for two connections, one of them held by the test: the client's
    engine loop gets the other, and a caller connection is refused."""
    daemon.stop()
    daemon.start("--max-connections", "2")
    wait_until(lambda: daemon.status().connections == 1, "the readiness probe's connection to close")
    return BlockingConnection.open(daemon.socket, "test")


def refusals(daemon: DaemonProcess) -> int:
    return daemon.log.read_text().count("daemon.connection_refused")
