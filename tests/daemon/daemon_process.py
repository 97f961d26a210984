"""A claif-codd process under test: started, killed and stopped like a user or systemd would."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claif_cod.protocol import DaemonStatus, DaemonStatusRequest, decode_result
from claif_cod.transport.autostart import answers
from claif_cod.transport.daemon_client import DaemonConnection

START_TIMEOUT_S = 20.0


@dataclass
class DaemonProcess:
    socket: Path
    state_dir: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "claif_codd",
                    "serve",
                    "--socket",
                    str(self.socket),
                    "--state-dir",
                    str(self.state_dir),
                    "--log-level",
                    "debug",
                    *extra,
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()  # never leave a daemon behind that starts after we gave up
                self.proc.wait()
                raise RuntimeError(f"daemon did not start:\n{self.log.read_text()}")
            time.sleep(0.02)

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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
