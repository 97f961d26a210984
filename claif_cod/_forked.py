"""What a forked child does at once with what it inherited: its copies of its parent's Codex pipes and
daemon sockets are let go of, and each object registered for it is told.

``os.fork()`` (``multiprocessing``'s default start on Linux) copies every descriptor into the child.
A copy of a Codex child's stdin keeps that pipe open after the parent has closed it, so the kill
ladder's first rung (end of input) no longer reaches Codex and the parent's ``close()`` waits for
SIGTERM; a copy of a daemon connection keeps it open for the daemon after the parent has closed
it.  Right after a fork, the child points each such copy at ``/dev/null``: the pipe or socket is
released, while the descriptor number stays valid for the parent's objects the child inherited
(kept there unused: ``transport.loop_thread``), so nothing is closed twice and nothing the child
sends reaches the parent's Codex or daemon (Linux only, ``/proc``; elsewhere they stay open).
Objects whose state is the parent's (a transport's engine loop and connections, a stream's events
from the parent's engine thread) register a callback with :func:`call_after_fork`.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable, Iterable
from typing import Any

_held: weakref.WeakKeyDictionary[object, frozenset[str]] = weakref.WeakKeyDictionary()
_calls: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()


def call_after_fork(owner: Any, callback: Callable[[Any], None]) -> None:
    """While ``owner`` lives, ``callback(owner)`` runs in every child forked from this process (and
    from those children), right after the fork."""
    _calls[owner] = callback


def let_go_after_fork(owner: object, names: Iterable[str | None]) -> None:
    """While ``owner`` lives, a forked child lets go of the pipes and sockets ``names`` (as ``/proc``
    links name them: ``pipe:[…]``, ``socket:[…]``; None is skipped)."""
    found = frozenset(name for name in names if name is not None)
    if found:
        _held[owner] = found


def fd_name(fd: int) -> str | None:
    """What descriptor ``fd`` is (``pipe:[…]``, ``socket:[…]``); None where that is unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def transport_name(transport: asyncio.BaseTransport) -> str | None:
    """:func:`fd_name` of the descriptor under ``transport`` (a socket; a pipe with asyncio's own loop)."""
    end = transport.get_extra_info("socket") or transport.get_extra_info("pipe")
    try:
        return None if end is None else fd_name(end.fileno())
    except (OSError, ValueError):  # closed already (a child that exited at once): nothing to let go of
        return None


def _after_fork_in_child() -> None:
    for owner, callback in list(_calls.items()):
        callback(owner)
    _let_go()


def _let_go() -> None:
    names = frozenset().union(*_held.values())
    _held.clear()
    if not names:
        return
    try:
        fds = [int(entry) for entry in os.listdir("/proc/self/fd")]
    except OSError:
        return
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for fd in fds:
            if fd != null and fd_name(fd) in names:
                os.dup2(null, fd, inheritable=False)
    finally:
        os.close(null)


os.register_at_fork(after_in_child=_after_fork_in_child)
