"""How close this process is to its file descriptor limit (``RLIMIT_NOFILE``).

Running out is reported badly where it happens: uvloop says ``[Errno -1] Unknown error -1`` when a
child's pipes cannot be made, and libuv, past the limit, accepts every waiting connection and
closes it at once, so that the client reads only that the daemon hung up and the daemon logs
nothing. So the engine and the daemon look here, and say which limit it is.
"""

from __future__ import annotations

import errno
import os
import resource
from dataclasses import dataclass

FEW = 16
"""Fewer free descriptors than this is running short: a Codex process takes about 5, more while it
starts, and a daemon refusing a connection needs the one it accepted to say why."""


@dataclass(frozen=True)
class Shortage:
    """This process's descriptors, when fewer than :data:`FEW` are free."""

    open: int | None
    """How many are open; None when there was not even one left to list them with."""
    limit: int

    def __str__(self) -> str:
        opened = "" if self.open is None else f"{self.open} open, "
        return f"out of file descriptors: {opened}the limit is {self.limit}"


def shortage() -> Shortage | None:
    """The process's descriptors when fewer than :data:`FEW` are free; None while there is room, and
    where it cannot be told (no ``/proc``: not Linux)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        open_now = len(os.listdir("/proc/self/fd")) - 1  # less the one listing them
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return Shortage(None, soft)
        return None
    return Shortage(open_now, soft) if soft - open_now < FEW else None
