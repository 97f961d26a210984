"""What an app-server client puts on a Codex thread's queue (:class:`~claif_cod.engine.inbox.Inbox`):
the thread's notifications, the news that the child died, and a waiter's own wakeup."""

from __future__ import annotations

import msgspec

from claif_cod.engine.errors import CodexProcessDied


class Notification:
    """A notification Codex sent about the thread (its params undecoded until the reader needs them)."""

    __slots__ = ("method", "params")

    def __init__(self, method: str, params: msgspec.Raw) -> None:
        self.method = method
        self.params = params


class ProcessExit:
    """Put on every thread queue when the child dies."""

    __slots__ = ("error",)

    def __init__(self, error: CodexProcessDied) -> None:
        self.error = error


class Wakeup:
    """Put on a thread queue by whoever waits on it, to wake itself (see :mod:`claif_cod.engine.turn_wait`)."""

    __slots__ = ()


ThreadMessage = Notification | ProcessExit | Wakeup
