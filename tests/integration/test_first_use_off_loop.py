"""What a fresh process does once, on its first in-process request, it does in a worker thread: the
engine loop must not stall for it, since every session's turn waits on that loop (asyncio's debug
mode, ``-X dev``, reports any step of a task that takes over 0.1 s).  Each is made as slow here as
on a loaded machine:

- the engine's modules, imported on a client's first in-process request (a client of the daemon
  never needs them: tests/daemon/test_daemon_client_imports.py), 0.1-0.2 s under load;
- a first remote image's CA store (50-100 ms) and anyio's asyncio backend (~25 ms), which httpx2
  loads on its first fetch: a 0.12 s step in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fresh_script import run_script
from image_host import png_host

pytestmark = pytest.mark.codex

SCRIPT = """
import importlib.abc
import ssl
import sys
import time

SLOW = {{"claif_cod.transport.in_process", "anyio._backends._asyncio"}}


class SlowDisk(importlib.abc.MetaPathFinder):
    '''These modules' import as slow as on a loaded machine.'''

    def find_spec(self, name, path=None, target=None):
        if name in SLOW:
            time.sleep(0.3)
        return None


def slow_load(self, *args, _load=ssl.SSLContext.load_verify_locations, **kwargs):
    time.sleep(0.3)
    return _load(self, *args, **kwargs)


sys.meta_path.insert(0, SlowDisk())
ssl.SSLContext.load_verify_locations = slow_load
from claif_cod import CodexClient

image = {{"type": "image_url", "image_url": {{"url": "{image}"}}}}
look = [{{"role": "user", "content": [{{"type": "text", "text": "hi"}}, image]}}]
with CodexClient(daemon="off", model="o4-mini") as client:
    reply = client.chat.completions.create(messages=look)
    print(reply.choices[0].message.content)
"""


@pytest.fixture
def image_url() -> Iterator[str]:
    with png_host() as url:
        yield f"{url}/cat.png"


def test_first_use_work_does_not_stall_the_engine_loop(codex_home: Path, workdir: Path, image_url: str) -> None:
    env = {**os.environ, "CLAIF_COD_DAEMON": "off"}
    done = run_script(SCRIPT.format(image=image_url), workdir, env, stall=0.25)  # each slowness here: 0.3 s
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "Echo: hi\n"
