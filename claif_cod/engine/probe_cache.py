"""What a Codex binary accepts, remembered on disk so a new process does not ask it again.

Learning the accepted approval and sandbox values means generating Codex's whole protocol
schema (~5 MB of files, ~0.2 s); doing that in every new process made each cold start slower
and left ``claif-cod-schema-*`` folders in /tmp whenever a process was killed mid-probe.  The
answer is kept per binary identity (path, size, mtime, ctime, inode: a replaced or rebuilt
binary gets a new entry) in ``$XDG_CACHE_HOME/claif-cod/codex-probe/`` (default
``~/.cache/claif-cod/codex-probe/``), a 0700 directory of 0600 files (which also holds the model
catalogs written for tools-only threads, see engine/tools_only.py).  The schema itself is
generated inside that directory, never in the shared temporary folder.  An unusable directory
(unwritable, not ours, group/world-accessible) or a corrupt entry is never fatal: the probe
is simply redone and, where possible, rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import time
from pathlib import Path

import msgspec

from claif_cod._private_dirs import make_private_dirs

ENV_CACHE_HOME = "XDG_CACHE_HOME"
_STALE_WORK_DIR_S = 300.0  # a schema folder this old was left by a process that died mid-probe


class Identity(msgspec.Struct, frozen=True):
    """What makes a binary the same binary: any rebuild, copy or replacement changes one of these."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, path: str) -> Identity:
        st = os.stat(path)
        return cls(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class Entry(msgspec.Struct):
    identity: Identity
    version: str
    approval_values: list[str]
    sandbox_values: list[str]


_decoder = msgspec.json.Decoder(Entry)


def cache_dir() -> Path:
    base = os.environ.get(ENV_CACHE_HOME) or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "claif-cod" / "codex-probe"


def _private_dir(create: bool) -> Path | None:
    """The cache directory if it is (or could be made) ours alone; None means: do without."""
    directory = cache_dir()
    if create:
        try:
            make_private_dirs(directory)
        except OSError:
            return None
    try:
        st = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return directory


def _entry_path(directory: Path, identity: Identity) -> Path:
    key = hashlib.sha256(msgspec.json.encode(identity)).hexdigest()[:32]
    return directory / f"{key}.json"


def load(identity: Identity) -> Entry | None:
    """The remembered probe of this exact binary, or None (missing, unreadable, corrupt, stale)."""
    directory = _private_dir(create=False)
    if directory is None:
        return None
    try:
        entry = _decoder.decode(_entry_path(directory, identity).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    return entry if entry.identity == identity else None


def store(entry: Entry) -> None:
    """Remember a probe; failing to write is not an error (the next process probes again)."""
    directory = _private_dir(create=True)
    if directory is not None:
        _write(_entry_path(directory, entry.identity), msgspec.json.encode(entry))


def store_file(name: str, data: bytes) -> Path | None:
    """Write ``data`` as ``name`` in the private directory (0600, atomically); None when that fails."""
    directory = _private_dir(create=True)
    if directory is None:
        return None
    target = directory / name
    return target if _write(target, data) else None


def _write(target: Path, data: bytes) -> bool:
    partial = target.with_name(f"{target.stem}.{os.getpid()}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(partial, target)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        return False
    return True


def work_dir() -> Path | None:
    """Where to generate the schema: inside the private cache directory (None: not usable).

    Folders left there by a process killed mid-probe are removed here, on the next miss.
    """
    directory = _private_dir(create=True)
    if directory is None:
        return None
    now = time.time()
    for stale in directory.glob("schema-*"):
        with contextlib.suppress(OSError):
            if now - stale.lstat().st_mtime > _STALE_WORK_DIR_S:
                shutil.rmtree(stale, ignore_errors=True)
    return directory
