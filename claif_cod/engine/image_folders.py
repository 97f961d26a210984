"""The temporary folders of turns' images: named after the process that made them, so that the
folders of a process that is gone are found and removed.

A turn's folder is removed when its turn ends, or when its engine closes. A process killed before
that (SIGKILL, the OOM killer, a SIGTERM Python does not handle: ``docker stop``, ``timeout``,
systemd's stop of a script) cannot remove it, and the caller's images stayed in the shared
temporary folder for good. So each folder's name says which process made it,
``claif-cod-images-<pid namespace>-<pid>-<random>``, and the first turn with images in a process
(once per temporary folder) removes those whose maker is no longer running: a daemon restarted
after a crash removes the ones it left, a script run again the ones of its killed run.

Only folders of our own user, named in our own PID namespace (a PID means nothing in another:
containers may share ``/tmp``), whose process does not exist are removed; a folder of a running
process, or one whose PID was reused, is left alone. Where ``/proc`` does not name the PID
namespace, folders carry no owner and nothing is swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile

PREFIX = "claif-cod-images-"
_OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-(\d+)-")

_swept: set[str] = set()
"""Temporary folders this process has swept already (inherited by a forked child: its parent's
sweep is as good as its own)."""


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def folder_prefix() -> str:
    """The ``mkdtemp`` prefix of this process's image folders (the PID as of now: forks differ)."""
    namespace = _pid_namespace()
    return PREFIX if namespace is None else f"{PREFIX}{namespace}-{os.getpid()}-"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process (a reused PID): running
        return False
    return False


def sweep(folder: str) -> list[str]:
    """Remove from ``folder`` the image folders of processes that are gone; returns their names."""
    namespace = _pid_namespace()
    if namespace is None:
        return []
    removed: list[str] = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            owner = _OWNED.match(entry.name)
            if owner is None or int(owner[1]) != namespace or int(owner[2]) == os.getpid():
                continue
            try:
                if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
            except OSError:
                continue
            if _gone(int(owner[2])):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.name)
    return removed


async def sweep_once() -> None:
    """:func:`sweep` the temporary folder, in a worker thread (it may hold many entries), once per
    process and folder: before this process's first turn with images there."""
    folder = tempfile.gettempdir()
    if folder in _swept:
        return
    _swept.add(folder)
    await asyncio.to_thread(sweep, folder)
