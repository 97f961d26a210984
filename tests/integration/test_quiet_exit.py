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
