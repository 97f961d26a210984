"""SqliteSessionStore under faults: a write it cannot make names the file; damage loses as little as possible."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from claif_cod.engine.conversations import Message
from claif_cod.engine.errors import SessionStoreFailed
from claif_cod.engine.sessions import SessionRecord
from claif_codd.registry import MIGRATIONS, SqliteSessionStore


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


def test_v1_sessions_survive_the_v2_migration_and_history_is_kept_per_home(db_path: Path) -> None:
    with SqliteSessionStore(db_path, migrations=MIGRATIONS[:1]) as v1:
        v1._db().execute("INSERT INTO sessions VALUES ('old', 'thread-old', '/work', NULL, 4, 1.5)")
    with SqliteSessionStore(db_path) as store:
        assert store.get("old") == SessionRecord("old", "thread-old", "/work", None, 4, 1.5, "")
        store.put(rec("s", 1), [Message("user", "hi"), Message("assistant", "hello")])
        store.put(SessionRecord("s", "thread-b", "/work", None, 1, 2.0, "/home/b"), [Message("user", "other")])
        store.put(rec("s", 2), [Message("user", "again")])
        assert [m.text for m in store.history("s")] == ["hi", "hello", "again"]
        assert [m.text for m in store.history("s", "/home/b")] == ["other"]
        assert store.delete("s") and store.history("s") == [] and store.get("s", "/home/b") is None


def test_v2_sessions_survive_the_v3_migration_and_a_sessions_instructions_are_kept(db_path: Path) -> None:
    """v3 keeps the instructions a session started with, to seed a new thread with when its rollout is gone."""
    with SqliteSessionStore(db_path, migrations=MIGRATIONS[:2]) as v2:
        v2._db().execute("INSERT INTO sessions VALUES ('old', '/h', 'thread-old', '/work', NULL, 4, 1.5)")
    with SqliteSessionStore(db_path) as store:
        assert store.get("old", "/h") == SessionRecord("old", "thread-old", "/work", None, 4, 1.5, "/h", None)
        store.put(SessionRecord("styled", "t", "/work", None, 0, 2.0, "/h", "Answer like a pirate."))
        store.put(SessionRecord("styled", "t", "/work", None, 1, 3.0, "/h", "Answer like a pirate."))
    with SqliteSessionStore(db_path) as store:
        record = store.get("styled", "/h")
        assert record is not None and record.instructions == "Answer like a pirate." and record.turns == 1


def test_a_sessions_last_recorded_turn_is_kept_and_from_before_v4_is_not_known(db_path: Path) -> None:
    """v4 keeps the id of a session thread's last recorded turn: a later one a killed daemon left in
    the rollout is dropped on resume; NULL (a session from before) means "not known": none is."""
    with SqliteSessionStore(db_path, migrations=MIGRATIONS[:3]) as v3:
        v3._db().execute("INSERT INTO sessions VALUES ('old', '/h', 't', '/work', NULL, 2, 1.5, NULL)")
    with SqliteSessionStore(db_path) as store:
        old = store.get("old", "/h")
        assert old is not None and old.last_turn is None
        store.put(SessionRecord("new", "t2", "/work", None, 0, 2.0, "/h", None, ""))
        fresh = store.get("new", "/h")
        assert fresh is not None and fresh.last_turn == ""
        store.put(SessionRecord("new", "t2", "/work", None, 1, 3.0, "/h", None, "turn-1"))
    with SqliteSessionStore(db_path) as store:
        record = store.get("new", "/h")
        assert record is not None and record.last_turn == "turn-1"


def test_no_shared_memory_file_so_a_truncated_shm_cannot_sigbus_the_daemon(
    store: SqliteSessionStore, db_path: Path
) -> None:
    store.put(rec("a"))
    shm = db_path.with_name(db_path.name + "-shm")
    assert not shm.exists()  # WAL's index lives in the daemon's private memory
    shm.write_bytes(b"\xff" * 65536)  # what an unlucky cleanup or an attacker could leave there
    shm.write_bytes(b"")
    for i in range(50):
        store.put(rec("a", i + 2))
    assert store.get("a") == rec("a", 51)


def test_a_corrupt_registry_keeps_what_can_still_be_read(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    originals = {
        f"s{i:03d}": SessionRecord(f"s{i:03d}", f"t{i}" + "x" * 300, "/w", None, i, 1000.0 + i) for i in range(300)
    }
    with SqliteSessionStore(db_path) as store:
        for record in originals.values():
            store.put(record)
    size = db_path.stat().st_size
    with db_path.open("r+b") as f:  # scribble over one page near the end: a torn write, a bad sector
        f.seek(size - 3 * 4096)
        f.write(b"\xa5" * 4096)
    caplog.set_level(logging.WARNING, logger="claif_codd.registry")
    with SqliteSessionStore(db_path) as store:
        kept = store.all()
    assert 0 < len(kept) < len(originals)  # some rows were behind the damage, most were not
    assert all(originals[r.session_id] == r for r in kept)
    [warning] = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert f"kept the {len(kept)} sessions" in warning
