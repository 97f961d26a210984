"""Waiting with a deadline, cheaply: each request to Codex is awaited this way, and an interrupted
turn's wait for its end (a running turn's events share one timer: :mod:`claif_cod.engine.turn_wait`).

``asyncio.wait_for`` wraps a coroutine in a new task on each call (about 10 µs on CPython 3.11);
``asyncio.timeout`` (3.11+) only arms a timer on the current task.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
        """``await awaitable``, raising ``TimeoutError`` after ``timeout`` seconds (None: no limit)."""
        if timeout is None:
            return await awaitable
        async with asyncio.timeout(timeout):
            return await awaitable

else:  # pragma: no cover - CPython 3.10

    async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
        """``await awaitable``, raising ``TimeoutError`` after ``timeout`` seconds (None: no limit)."""
        return await asyncio.wait_for(awaitable, timeout)
