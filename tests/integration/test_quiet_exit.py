"""Scripts that leave things half done at their exit still exit quietly (nothing on stderr), as the
same script on openai's own client does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fresh_script import run_script

pytestmark = pytest.mark.codex

RAW_STREAM_CLOSED = """
from claif_cod import CodexClient

client = CodexClient()
raw = client.{api}.with_raw_response.create(model="o4-mini", stream=True, {ask})
stream = raw.parse()
next(iter(stream))
stream.close()
print("end")
"""


@pytest.mark.parametrize(
    ("api", "ask"),
    [
        ("responses", 'input="[[long:300]] go"'),
        ("chat.completions", 'messages=[{"role": "user", "content": "[[long:300]] go"}]'),
    ],
)
def test_a_raw_stream_read_then_closed_exits_quietly(codex_home: Path, workdir: Path, api: str, ask: str) -> None:
    """openai's half-read event generator is finalized at interpreter exit, when its except clause
    first asks anyio for EndOfStream, lazily: "ImportError: sys.meta_path is None"."""
    done = run_script(RAW_STREAM_CLOSED.format(api=api, ask=ask), workdir, {**os.environ, "CLAIF_COD_DAEMON": "off"})
    assert (done.returncode, done.stdout, done.stderr) == (0, "end\n", "")


THREADS_MID_STREAM = """
import asyncio
import threading

from claif_cod import AsyncCodexClient, CodexClient

client, aclient = CodexClient(), AsyncCodexClient()
ASK = [{{"role": "user", "content": "[[long:2000]] [[slow:20]] go"}}]
streaming = [threading.Event() for _ in range(3)]


def sync_reader(started):
    for _ in client.chat.completions.create(model="o4-mini", stream=True, messages=ASK):
        started.set()


def async_reader(started):
    async def read():
        async for _ in await aclient.chat.completions.create(model="o4-mini", stream=True, messages=ASK):
            started.set()

    asyncio.run(read())


for started in streaming:
    threading.Thread(target={reader}, args=(started,), daemon=True).start()
for started in streaming:
    assert started.wait(60)
print("end")
"""


@pytest.mark.parametrize("reader", ["sync_reader", "async_reader"])
def test_daemon_threads_mid_stream_at_exit_exit_quietly(codex_home: Path, workdir: Path, reader: str) -> None:
    """Ending the client's loops at exit failed every daemon thread's stream: "Exception in thread"
    and a traceback each (openai's own client leaves them blocked on their sockets, as Python stops them)."""
    script = THREADS_MID_STREAM.format(reader=reader)
    done = run_script(script, workdir, {**os.environ, "CLAIF_COD_DAEMON": "off"})
    assert (done.returncode, done.stdout, done.stderr) == (0, "end\n", "")


THREADS_ASKING = """
import atexit
import sys
import threading
import time

workers = []


def settled(worker):
    frame = sys._current_frames().get(worker.ident)
    while frame is not None:
        if frame.f_code.co_name == "wait_out_the_exit":
            return True
        frame = frame.f_back
    return not worker.is_alive()


def linger():  # the exit's last step (registered first): each worker has raised (and printed it), or waits
    deadline = time.monotonic() + 60
    while not all(settled(worker) for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.01)


atexit.register(linger)

import asyncio

from claif_cod import AsyncCodexClient, CodexClient, fast_create

client, aclient = CodexClient(), AsyncCodexClient()
ASK = [{{"role": "user", "content": "[[stall]] go"}}]
posted = fast_create._posted


def posted_once_the_engine_ended(resource, *args):
    # The exit's end of the engine failed the request: openai's pipeline takes it once the engine is gone.
    resource._client._core._loop._thread.join()
    return posted(resource, *args)


fast_create._posted = posted_once_the_engine_ended


def sync_asker():
    client.chat.completions.create(model="o4-mini", messages=ASK)


def async_asker():
    asyncio.run(aclient.chat.completions.create(model="o4-mini", messages=ASK))


def late_asker():  # its next request, made once the exit ended the engine
    client._core.loop._thread.join()
    client.models.list()


client.models.list()
for _ in range(2):
    workers.append(threading.Thread(target={asker}, daemon=True))
    workers[-1].start()
engine = (aclient if {asker} is async_asker else client).backend
while {asker} is not late_asker and (engine is None or engine.local is None or engine.local.engine.turns_in_flight < 2):
    time.sleep(0.01)
    engine = (aclient if {asker} is async_asker else client).backend
print("end")
"""


@pytest.mark.parametrize("asker", ["sync_asker", "async_asker", "late_asker"])
def test_daemon_threads_asking_at_exit_exit_quietly(codex_home: Path, workdir: Path, asker: str) -> None:
    """A request the exit's end of the engine failed (not a stream: its answer, which openai's pipeline
    was then given to send again), or one a daemon thread made after that, printed "Exception in
    thread" and a traceback each ("Event loop is closed"; "cannot schedule new futures after
    interpreter shutdown", from openai's first async request in a thread it can no longer start)."""
    done = run_script(THREADS_ASKING.format(asker=asker), workdir, {**os.environ, "CLAIF_COD_DAEMON": "off"})
    assert (done.returncode, done.stdout, done.stderr) == (0, "end\n", "")
