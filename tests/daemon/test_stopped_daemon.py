"""A daemon that stops answering mid-use (``kill -STOP``, hung): a request still ends at its own
timeout, and the request it was told failed does not happen once the daemon runs again."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from chat_messages import user
from daemon_process import DaemonProcess

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.transport import daemon_client, direct_daemon

pytestmark = pytest.mark.codex

WAKE_AFTER_S = 30.0
"""When the stopped daemon is woken whatever happens: a client that waited for it instead of giving
up at its timeout then gets its answer, and the test fails on that, not on the suite's timeout."""


@pytest.fixture
def stoppable(daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonProcess]:
    monkeypatch.setattr(daemon_client, "ANSWER_GRACE_S", 0.2)
    monkeypatch.setattr(direct_daemon, "ANSWER_GRACE_S", 0.2)
    yield daemon
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGCONT)


def stop(daemon: DaemonProcess) -> threading.Timer:
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    waking = threading.Timer(WAKE_AFTER_S, os.kill, (daemon.proc.pid, signal.SIGCONT))
    waking.start()
    return waking


def wake(daemon: DaemonProcess, waking: threading.Timer) -> None:
    waking.cancel()
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("stream", [False, True])
def test_a_sync_request_to_a_stopped_daemon_ends_at_its_timeout(
    stream: bool, stoppable: DaemonProcess, workdir: Path
) -> None:
    with CodexClient(daemon="require", model="o4-mini", session_id="stopped", max_retries=0) as client:
        client.chat.completions.create(messages=[user("one")])
        client.chat.completions.create(messages=[user("two")])  # the caller's own connection is open now
        waking = stop(stoppable)
        try:
            with pytest.raises(openai.APITimeoutError):  # a stream's from create(): nothing of it came
                client.with_options(timeout=0.5).chat.completions.create(messages=[user("lost")], stream=stream)
        finally:
            wake(stoppable, waking)
        answer = client.chat.completions.create(messages=[user("three")]).choices[0].message.content
    assert answer == "[turn 3] Echo: three"  # the request it was told failed never ran


@pytest.mark.parametrize("stream", [False, True])
async def test_an_async_request_to_a_stopped_daemon_ends_at_its_timeout(
    stream: bool, stoppable: DaemonProcess, workdir: Path
) -> None:
    async with AsyncCodexClient(daemon="require", model="o4-mini", session_id="stopped", max_retries=0) as client:
        await client.chat.completions.create(messages=[user("one")])
        waking = stop(stoppable)
        try:
            with pytest.raises(openai.APITimeoutError):
                await client.with_options(timeout=0.5).chat.completions.create(messages=[user("lost")], stream=stream)
        finally:
            await asyncio.to_thread(wake, stoppable, waking)
        answer = (await client.chat.completions.create(messages=[user("two")])).choices[0].message.content
    assert answer == "[turn 2] Echo: two"


def test_a_stream_whose_daemon_stops_midway_ends_at_its_timeout(stoppable: DaemonProcess, workdir: Path) -> None:
    """Between two events of a stream, its timeout is the longest wait."""
    with CodexClient(daemon="require", model="o4-mini", session_id="stopped", max_retries=0) as client:
        client.chat.completions.create(messages=[user("one")])
        client.chat.completions.create(messages=[user("two")])  # the caller's own connection is open now
        stream = client.with_options(timeout=5).chat.completions.create(
            messages=[user("[[slow:500]] a b c d e f g h")], stream=True
        )
        next(chunk for chunk in stream if chunk.choices and chunk.choices[0].delta.content)
        waking = stop(stoppable)
        try:
            with pytest.raises(openai.APITimeoutError):
                list(stream)
        finally:
            wake(stoppable, waking)
        answer = client.chat.completions.create(messages=[user("three")]).choices[0].message.content
    assert answer == "[turn 3] Echo: three"  # the interrupted turn was given up, and left no trace
