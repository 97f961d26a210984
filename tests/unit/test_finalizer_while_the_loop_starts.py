"""An unclosed client copy's finalizer may run in any thread, at any allocation: also in a thread that
holds its transport core's lock while it starts the engine loop (a first request, whose imports and
thread allocate).  The finalizer takes that lock too: it deadlocked the first request for ever (seen
as a hung ``client.models.list()`` after ``with_options`` copies became garbage)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from claif_cod import CodexClient
from claif_cod.transport import transport_core

HANG_GUARD_S = 60.0
"""Not a timing: a thread still blocked after this long is deadlocked."""


def test_a_copys_finalizer_run_as_the_engine_loop_starts_does_not_deadlock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = CodexClient(daemon="off", working_dir=tmp_path)
    copies: list[Any] = [client.with_options(max_retries=2)]
    real = transport_core.LoopThread

    def starting(*args: Any, **kwargs: Any) -> Any:
        copies.clear()  # the copy's last reference goes: its finalizer runs now, in this thread
        return real(*args, **kwargs)

    monkeypatch.setattr(transport_core, "LoopThread", starting)
    started = threading.Thread(target=lambda: client._core.loop, daemon=True)
    started.start()
    started.join(HANG_GUARD_S)
    assert not started.is_alive(), "the engine loop's start deadlocked on the finalizer"
    assert copies == []
    client.close()
