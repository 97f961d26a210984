"""No ``-shm`` file at any point of opening the registry, the integrity check and a salvage included.

A ``-shm`` mapping is what a truncated or frozen file turns into a SIGBUS. Every SQL statement the
registry runs is traced; at each one the directory is looked at, and each connection must have
entered exclusive locking mode before its first read.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from claif_cod.engine.sessions import SessionRecord
from claif_codd.registry import SqliteSessionStore


def rec(i: int) -> SessionRecord:
    return SessionRecord(f"s{i:03d}", f"t{i}" + "x" * 300, "/w", None, i, 1000.0 + i)


@dataclass
class Trace:
    directory: Path
    statements: list[list[str]] = field(default_factory=list)
    """Per connection, every statement it ran."""
    shm_seen: set[str] = field(default_factory=set)


@contextlib.contextmanager
def traced(directory: Path) -> Iterator[Trace]:
    """Traces every connection opened meanwhile, looking for ``-shm`` files at each of its statements."""
    seen = Trace(directory)
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        statements: list[str] = []
        seen.statements.append(statements)

        def step(statement: str) -> None:
            statements.append(statement)
            seen.shm_seen.update(p.name for p in directory.iterdir() if p.name.endswith("-shm"))

        conn.set_trace_callback(step)
        return conn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced_connect)
        yield seen


def crash_image(tmp_path: Path, checkpointed: int, in_wal: int) -> Path:
    """A registry as a killed daemon leaves it: the last sessions committed to the WAL, not checkpointed."""
    live = tmp_path / "live" / "sessions.db"
    with SqliteSessionStore(live) as store:
        for i in range(checkpointed):
            store.put(rec(i))
    with SqliteSessionStore(live) as store:
        for i in range(checkpointed, checkpointed + in_wal):
            store.put(rec(i))
        image = tmp_path / "crash"
        image.mkdir(mode=0o700)
        for suffix in ("", "-wal"):
            shutil.copy(f"{live}{suffix}", image / f"sessions.db{suffix}")
    assert (image / "sessions.db-wal").stat().st_size > 0
    return image / "sessions.db"


def assert_no_shm_ever(seen: Trace) -> None:
    assert seen.statements, "the registry opened no connection through sqlite3.connect"
    firsts = [statements[0] if statements else None for statements in seen.statements]
    assert firsts == ["PRAGMA locking_mode = EXCLUSIVE"] * len(firsts), seen.statements
    assert seen.shm_seen == set()
    assert not any(p.name.endswith("-shm") for p in seen.directory.iterdir())


def test_reopening_after_a_crash_never_makes_a_shm_file(tmp_path: Path) -> None:
    path = crash_image(tmp_path, checkpointed=10, in_wal=10)
    with traced(path.parent) as seen, SqliteSessionStore(path) as store:
        assert sorted(r.session_id for r in store.all()) == [rec(i).session_id for i in range(20)]
    assert_no_shm_ever(seen)


def test_salvaging_a_corrupt_registry_never_makes_a_shm_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = crash_image(tmp_path, checkpointed=300, in_wal=3)
    size = path.stat().st_size
    with path.open("r+b") as f:  # scribble over a page of the main file: a torn write, a bad sector
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\xa5" * 4096)
    caplog.set_level(logging.WARNING, logger="claif_codd.registry")
    with traced(path.parent) as seen, SqliteSessionStore(path) as store:
        kept = store.all()
    assert 0 < len(kept) <= 303 and all(r == rec(r.turns) for r in kept)
    [warning] = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert f"kept the {len(kept)} sessions" in warning
    assert_no_shm_ever(seen)
