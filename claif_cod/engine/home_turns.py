"""Codex start-ups that share a ``CODEX_HOME`` take turns, across engines and processes.

Codex initialises its sqlite state in ``CODEX_HOME`` as it starts, and fails ("failed to
initialize sqlite state runtime") when another process does it at the same moment. An engine's
pool already starts one process of a home at a time; two engines (two in-process clients in one
script, a sync and an async one) or two processes (pytest-xdist workers on one fresh home) did
not know of each other's, and one of their first requests failed. So a start-up also holds an
``flock`` on ``.claif-cod-starting.lock`` in the home, taken without blocking and tried again every
:data:`POLL_S` (a start takes ~50 ms), so that a cancelled wait holds nothing. A home that is not
there yet, or where the file cannot be made, is started without it, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator

LOCK_NAME = ".claif-cod-starting.lock"
POLL_S = 0.02


def _lock_file(home: str) -> int | None:
    """The home's lock file, opened; None when there is no home yet (Codex makes it) or we cannot write in it."""
    try:
        return os.open(
            os.path.join(os.path.expanduser(home), LOCK_NAME),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
            0o600,
        )
    except OSError:
        return None


@contextlib.asynccontextmanager
async def home_turn(home: str) -> AsyncIterator[None]:
    """Holds the start-up turn of ``home`` (a ``CODEX_HOME``, ``~`` expanded) while the body runs."""
    fd = _lock_file(home)
    if fd is None:
        yield
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # (lets go of the lock)
