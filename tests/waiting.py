"""Waiting for a state the code under test reaches on its own time (a background interrupt, an
unloaded thread): polled with a deadline, so a test fails with what it waited for, never hangs."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
