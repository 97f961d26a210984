"""The engine's modules are imported on a client's first in-process request (a client of the daemon
never needs them: tests/daemon/test_daemon_client_imports.py), in a worker thread: the import takes
0.1-0.2 s on a busy machine, which the engine loop must not stall for (asyncio's debug mode,
``-X dev``, reports any step of a task that takes over 0.1 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fresh_script import run_script

pytestmark = pytest.mark.codex

SCRIPT = """
import importlib.abc
import sys
import time


class SlowDisk(importlib.abc.MetaPathFinder):
    '''The engine's import as slow as on a loaded machine.'''

    def find_spec(self, name, path=None, target=None):
        if name == "claif_cod.transport.in_process":
            time.sleep(0.3)
        return None


sys.meta_path.insert(0, SlowDisk())
from claif_cod import CodexClient

with CodexClient(daemon="off", model="o4-mini") as client:
    print(client.chat.completions.create(messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)
"""


def test_importing_the_engine_does_not_stall_its_loop(codex_home: Path, workdir: Path) -> None:
    done = run_script(SCRIPT, workdir, {**os.environ, "CLAIF_COD_DAEMON": "off"})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "Echo: hi\n"
