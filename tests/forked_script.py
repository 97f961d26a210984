"""A script that forks with a used client, as ``multiprocessing`` does on Linux, for the in-process and
daemon tests of what a forked child does (tests/integration/test_forked_child.py,
tests/daemon/test_forked_child_daemon.py).

Parent and child each ask three questions at the same time; the child then keeps everything it
inherited open until the parent has closed its client and the test said so on the parent's stdin.
Each process prints JSON lines: the replies it got, the Codex processes its client drove (in-process);
the parent what its client holds (its Codex processes' input, its daemon connections, as ``/proc``
names them), the child what it holds after its questions (every descriptor).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fresh_script import SLOW_STEP, run_script

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, warnings
    from claif_cod import CodexClient
    from claif_cod._forked import fd_name, transport_name

    client = CodexClient(model="o4-mini")

    def ask(text):
        return client.chat.completions.create(messages=[{"role": "user", "content": text}]).choices[0].message.content

    def codex():
        local = client.backend.local if client.backend is not None else None
        return [server.pid for _, server, *_ in local.engine.processes()] if local is not None else []

    def held():  # what the parent's client holds: its Codex processes' input, its daemon connections
        backend, direct = client.backend, client._core._direct_connections
        servers = [server for _, server, *_ in backend.local.engine.processes()] if backend.local else []
        names = [transport_name(server._child.proc.stdin.transport) for server in servers]
        names += [transport_name(backend.daemon.conn._writer.transport)] if backend.daemon else []
        return names + ([fd_name(conn.sock.fileno()) for conn in direct.sync._idle] if direct else [])

    def report(**fields):
        print(json.dumps(fields), flush=True)

    ask("parent warm")  # a daemon client's second request has its own connection
    report(who="parent", replies=[ask("parent before")], codex=codex(), held=held())
    go, hold = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() with threads running
        pid = os.fork()
    if pid == 0:
        os.close(hold)
        signal.alarm(60)  # a child that hangs ends, and the test sees what it did not print
        replies = [ask(f"child {i}") for i in range(3)]
        fds = [fd_name(int(fd)) for fd in os.listdir("/proc/self/fd")]
        report(who="child", replies=replies, codex=codex(), fds=fds)
        os.read(go, 1)  # everything inherited stays open until the parent has closed its client
        sys.exit(0)
    os.close(go)
    report(who="parent", replies=[ask(f"parent {i}") for i in range(3)])
    client.close()
    report(who="parent", closed=True)
    sys.stdin.readline()  # the test has looked at what the child holds
    os.close(hold)
    report(who="parent", child_exit=os.waitpid(pid, 0)[1])
    """
)


def run_forking_script(
    cwd: Path, env: dict[str, str], while_child_holds: Callable[[], None] = lambda: None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the parent reported before the fork and what the child reported, once each got its own
    replies, both exited and nothing was written to stderr; ``while_child_holds`` runs once the
    parent's client is closed and before the child lets go of what it inherited."""
    lines, stderr = _run(cwd, env, while_child_holds)
    assert stderr == "", stderr
    parent = [line for line in lines if line["who"] == "parent"]
    (child,) = [line for line in lines if line["who"] == "child"]
    assert parent[0]["replies"] == ["Echo: parent before"]
    assert parent[1]["replies"] == [f"Echo: parent {i}" for i in range(3)]
    assert child["replies"] == [f"Echo: child {i}" for i in range(3)]
    assert parent[3]["child_exit"] == 0
    return parent[0], child


def _run(cwd: Path, env: dict[str, str], while_child_holds: Callable[[], None]) -> tuple[list[dict[str, Any]], str]:
    proc = subprocess.Popen(
        [sys.executable, "-X", "dev", "-W", "error", "-c", SCRIPT],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[dict[str, Any]] = []
    try:
        for line in proc.stdout:
            lines.append(json.loads(line))
            if "closed" in lines[-1]:
                while_child_holds()
                proc.stdin.write("go\n")
                proc.stdin.flush()
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    return lines, SLOW_STEP.sub("", stderr)  # the machine's load, not the script's (see SLOW_STEP)


STREAM_SCRIPT = """
import os, signal, sys, warnings
import openai
from claif_cod import CodexClient

client = CodexClient(model="o4-mini")
client.chat.completions.create(messages=[{"role": "user", "content": "warm"}])  # a daemon's next are on own connections
stream = client.chat.completions.create(
    messages=[{"role": "user", "content": "[[slow:150]] one two three four"}], stream=True
)
chunks = iter(stream)
first = next(chunks)
unread = client.chat.completions.create(
    messages=[{"role": "user", "content": "[[slow:150]] five six"}], stream=True
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() with threads running
    pid = os.fork()
if pid == 0:
    signal.alarm(20)  # neither closing nor reading on may wait for the parent's engine thread
    unread.close()
    try:
        for chunk in chunks:
            pass
    except openai.APIConnectionError as exc:
        print(f"child: {type(exc).__name__}: {exc.message}", flush=True)
    stream.close()
    sys.exit(0)
text = "".join(c.choices[0].delta.content or "" for c in [first, *chunks] if c.choices)
print("parent:", text, "/", "".join(c.choices[0].delta.content or "" for c in unread if c.choices), flush=True)
print("child exit:", os.waitpid(pid, 0)[1], flush=True)
"""
"""Two streams opened before the fork, mid-way (a slow model): the child closes one unread and reads
on the other, which must end in openai's error at once (an alarm turns a wait into a failure), while
the parent reads both to their ends."""


ASYNC_STREAM_SCRIPT = """
import asyncio, os, signal, sys, threading, warnings
import openai
from claif_cod import AsyncCodexClient

loop = asyncio.new_event_loop()  # an application's event loop in a thread of its own
threading.Thread(target=loop.run_forever, daemon=True).start()

def run(coro):
    return asyncio.run_coroutine_threadsafe(coro, loop).result()

def text(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

async def opened():
    client = AsyncCodexClient(model="o4-mini")
    for _ in range(2):  # a daemon's next requests are on this loop's own connection
        await client.chat.completions.create(messages=[{"role": "user", "content": "warm"}])
    stream = await client.chat.completions.create(
        messages=[{"role": "user", "content": "[[slow:150]] one two three four"}], stream=True
    )
    chunks = stream.__aiter__()
    first = await chunks.__anext__()
    other = await client.chat.completions.create(
        messages=[{"role": "user", "content": "[[slow:150]] five six"}], stream=True
    )
    return stream, chunks, first, other

async def in_child(stream, chunks):
    try:
        async for chunk in chunks:
            pass
    except openai.APIConnectionError as exc:
        print(f"child: {type(exc).__name__}: {exc.message}", flush=True)
    await stream.close()

async def read(chunks, started=None):
    read = []
    async for chunk in chunks:
        read.append(chunk)
        if started is not None:
            started.set()
    return read

stream, chunks, first, other = run(opened())
started = threading.Event()
reading = asyncio.run_coroutine_threadsafe(read(other, started), loop)
started.wait()  # the loop's task has read the other stream's first word (the next is 150 ms away)
run(asyncio.sleep(0))  # and has gone on to wait for the next: a task on the loop ran after it
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() with threads running
    pid = os.fork()
if pid == 0:  # the loop's thread is not in the child: it reads on in a loop of its own
    signal.alarm(20)  # neither closing nor reading on may wait for the parent's engine thread
    asyncio.run(in_child(stream, chunks))
    sys.exit(0)
print("parent:", text([first, *run(read(chunks))]), "/", text(reading.result()), flush=True)
print("child exit:", os.waitpid(pid, 0)[1], flush=True)
"""
"""``STREAM_SCRIPT`` with an ``AsyncCodexClient`` used on an event loop in a thread of its own, one of
whose tasks waits on the other stream at the fork: a child that woke that task would schedule it on
the parent's loop, from another thread (an error with asyncio's debug mode on, as ``-X dev`` sets)."""


def run_stream_forking_script(cwd: Path, env: dict[str, str], *, asynchronous: bool = False) -> list[str]:
    """What ``STREAM_SCRIPT`` (or ``ASYNC_STREAM_SCRIPT``) printed; nothing may go to stderr."""
    done = run_script(ASYNC_STREAM_SCRIPT if asynchronous else STREAM_SCRIPT, cwd, env)
    assert done.stderr == "", done.stderr
    return done.stdout.splitlines()
