"""One daemon per state directory, for the daemon's whole life, drain included.

The registries in the state directory can be open in one daemon only. A daemon that drains has
stopped accepting connections (its socket refuses them), so a socket that does not answer does not
mean that no daemon is there: a second one took its socket for stale, said it had started, then
failed on SQLite's own lock ("database is locked"). A lock file taken before anything is bound,
and released by the kernel when the daemon's process ends, says who holds the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import msgspec

LOCK_NAME = "daemon.lock"


class Holder(msgspec.Struct):
    """The daemon that holds a state directory (written into its lock file)."""

    pid: int
    socket: str


class StateInUse(Exception):
    """Another daemon, serving or still stopping, holds the state directory."""

    def __init__(self, holder: Holder | None, state_dir: Path) -> None:
        self.holder = holder
        who = "another claif-codd" if holder is None else f"claif-codd (pid {holder.pid}, socket {holder.socket})"
        super().__init__(
            f"{who} holds the state directory {state_dir}: it is running, or still stopping (it exits once its "
            "running turns end, or its --drain-timeout passes); `claif-codd stop` waits for it"
        )


_holder = msgspec.json.Decoder(Holder)


def hold(state_dir: Path, socket_path: Path) -> int:
    """Take ``state_dir`` for this process; the returned descriptor (close-on-exec) holds it until it
    is closed or the process ends. Raises :class:`StateInUse` when another daemon holds it."""
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        os.close(fd)
        raise StateInUse(holder, state_dir) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, msgspec.json.encode(Holder(os.getpid(), str(socket_path))), 0)
    return fd


def holder(state_dir: Path) -> Holder | None:
    """The daemon holding ``state_dir`` now (serving, or still stopping), if any."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        return None  # taken at once: nobody holds it
    finally:
        os.close(fd)


def _read(fd: int) -> Holder | None:
    with contextlib.suppress(OSError, msgspec.DecodeError):
        return _holder.decode(os.pread(fd, 4096, 0))
    return None  # being written, or not ours
