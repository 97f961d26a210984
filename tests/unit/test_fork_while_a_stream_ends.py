"""A forked child is told at once that the streams it inherited come from its parent's engine thread
(``SyncEvents._forked``, ``AsyncEvents._forked``): closing one must not wait for the parent's turn, so
its pump's ``closed`` Event is set.  Setting it took that Event's lock, which another thread of the
parent may have held at the fork (an engine thread setting it as a stream ends, a thread in
``close()`` waiting on it): the child hung in the fork itself, for ever (a ``multiprocessing`` worker
that never started)."""

from __future__ import annotations

import asyncio
import os
import select
import signal

import httpx2
import pytest

from claif_cod.transport.stream_events import AsyncEvents, SyncEvents

HANG_GUARD_S = 60.0
"""Not a timing: a child that has not said it is running after this long hangs."""


async def _events(kind: str) -> SyncEvents | AsyncEvents:
    """A stream's events as the engine loop makes them (they take its loop)."""
    request = httpx2.Request("POST", "http://claif-cod.invalid/v1/chat/completions")
    return SyncEvents(request) if kind == "sync" else AsyncEvents(asyncio.get_running_loop(), request)


# The fork is the point; a pytest-xdist worker has a thread of its own, which Python 3.12+ warns of.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_fork_while_a_streams_closed_event_is_held(kind: str) -> None:
    events = asyncio.run(_events(kind))
    read, write = os.pipe()
    with events._pump.closed._cond:  # as its set() or wait() holds it for a moment
        pid = os.fork()
        if pid == 0:  # the child: past the fork's callbacks
            os.write(write, b"running")
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], HANG_GUARD_S)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        assert ready, "the forked child hung on the lock of an Event it inherited"
        assert os.read(read, 100) == b"running"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
