"""SqliteSessionStore under faults: a write it cannot make names the file; damage loses as little as possible."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claif_cod.engine.errors import SessionStoreFailed
from claif_cod.engine.sessions import SessionRecord
from claif_codd.registry import SqliteSessionStore


def rec(session_id: str, turns: int = 1) -> SessionRecord:
    return SessionRecord(session_id, f"thread-{session_id}", "/work", "gpt-test", turns, 1000.0 + turns)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sessions.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteSessionStore]:
    with SqliteSessionStore(db_path) as opened:
        yield opened


def fill(store: SqliteSessionStore, records: list[SessionRecord]) -> None:
    for record in records:
        store.put(record)


def test_a_write_the_disk_refuses_raises_session_store_failed_naming_the_file(
    store: SqliteSessionStore, db_path: Path
) -> None:
    store.put(rec("kept"))
    store._db().execute("PRAGMA max_page_count = 1")  # as good as a full disk for this connection
    records = [rec(f"s{i:03d}-" + "x" * 200) for i in range(200)]
    with pytest.raises(SessionStoreFailed) as info:
        fill(store, records)
    assert str(db_path) in str(info.value) and "full" in info.value.reason
    assert store.get("kept") == rec("kept")
