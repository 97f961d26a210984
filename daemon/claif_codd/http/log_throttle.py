"""At most one warning a minute for what a client can make happen at will.

A bad request or a refused connection is logged as a warning, but a client (one with no right to the
endpoint included) can send thousands a second: the log would grow by megabytes a minute. So each
such warning is logged once, then at most once a minute, saying how many there were since.
"""

from __future__ import annotations

import time

INTERVAL_S = 60.0


class LogThrottle:
    """Counts one kind of event; :meth:`due` says when one may be logged, and how many it stands for."""

    def __init__(self, interval: float = INTERVAL_S) -> None:
        self._interval = interval
        self._count = 0
        self._last = -interval

    def due(self) -> int | None:
        """Count one; the number to log now (this one and those not logged since), or None."""
        self._count += 1
        now = time.monotonic()
        if now - self._last < self._interval:
            return None
        count, self._count, self._last = self._count, 0, now
        return count
