"""Hand-over locks (``loop_thread._held``) whose uses are logged with their thread: which thread
waited for which, and whether a wait ended by a release or timed out."""

from __future__ import annotations

import _thread
import threading

import pytest

from claif_cod.transport import loop_thread

LockLog = list[tuple[str, str]]


class Logged:
    """A lock made held, as ``_held`` makes it; ``made`` is set once it exists."""

    def __init__(self, name: str, log: LockLog, made: threading.Event) -> None:
        self._name, self._log = name, log
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        made.set()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        self._log.append((threading.current_thread().name, f"{self._name} {'acquired' if got else 'timed out'}"))
        return got

    def release(self) -> None:
        self._log.append((threading.current_thread().name, f"{self._name} released"))
        self._lock.release()


def log_locks(monkeypatch: pytest.MonkeyPatch, *names: str, made: threading.Event | None = None) -> LockLog:
    """The next locks ``loop_thread`` makes with ``_held``, named in the order they are made, logged
    (the ones after them are not); ``made`` is set as each is made.  A hand-over that never came would
    hold the engine loop for a minute, and show as timed out."""
    log: LockLog = []
    left = list(names)
    event = made or threading.Event()
    plain = loop_thread._held
    monkeypatch.setattr(loop_thread, "_held", lambda: Logged(left.pop(0), log, event) if left else plain())
    monkeypatch.setattr(loop_thread, "HAND_OVER_WAIT_S", 60.0)
    return log
