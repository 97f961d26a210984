"""The daemon's Responses registry: records, thread tips, capacity, unfinished responses after a restart."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import signal
import sqlite3
from pathlib import Path

import msgspec
import pytest

from claif_cod.openai_compat.conversations_store import ConversationRecord, StoredItem
from claif_cod.openai_compat.responses_schema import Response
from claif_cod.openai_compat.responses_store import ResponseRecord, forgotten
from claif_codd.conversation_registry import SqliteConversationStore
from claif_codd.response_registry import SCHEMA_VERSION, SqliteResponseStore


def record(response_id: str, thread_id: str = "th1", status: str = "completed") -> ResponseRecord:
    body = Response(id=response_id, created_at=1, model="m", status=status, output=[])  # type: ignore[arg-type]
    return ResponseRecord(
        response_id, thread_id, "turn-" + response_id, "/w", None, 1.0, True, msgspec.json.encode(body)
    )


def test_records_and_tips_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    store = SqliteResponseStore(path)
    store.put(record("r1"))
    store.put(record("r2"))
    store.put(record("r3", thread_id="th2"))
    store.put(record("r1"))  # an update does not make r1 the tip again
    store.close()
    assert os.stat(path).st_mode & 0o777 == 0o600
    store = SqliteResponseStore(path)
    assert store.get("r2") == record("r2")
    assert store.tip("th1") == "r2" and store.tip("th2") == "r3" and store.tip("th3") is None
    store.delete("r2")
    assert store.tip("th1") == "r1" and store.get("r2") is None
    store.close()


def test_only_the_newest_are_kept(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "responses.db", capacity=2)
    for n in range(4):
        store.put(record(f"r{n}"))
    assert [store.get(f"r{n}") is not None for n in range(4)] == [False, False, True, True]
    store.close()


def test_a_response_unfinished_at_shutdown_is_failed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    store = SqliteResponseStore(path)
    store.put(record("r1", status="in_progress"))
    store.put(record("r2"))
    store.close()
    store = SqliteResponseStore(path)
    failed = msgspec.json.decode(store.get("r1").body, type=Response)  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None
    assert msgspec.json.decode(store.get("r2").body, type=Response).status == "completed"  # type: ignore[union-attr]
    store.close()


def test_an_unreadable_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    path.write_bytes(b"not a database at all" * 100)
    store = SqliteResponseStore(path)
    store.put(record("r1"))
    assert store.get("r1") is not None
    store.close()
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]


def test_a_damaged_page_is_found_at_open_and_what_can_be_read_is_kept(tmp_path: Path) -> None:
    """A page the open does not read (here the input table's) passed: the daemon started, then every
    ``retrieve`` crashed ("database disk image is malformed") and every new response was refused as if
    the disk were full. Now the file is moved aside and its readable rows kept."""
    path = tmp_path / "responses.db"
    store = SqliteResponseStore(path)
    records = [dataclasses.replace(record(f"r{n}"), input=b'["' + b"x" * 6000 + b'"]') for n in range(4)]
    for each in records:
        store.put(each)
    conversations = SqliteConversationStore(store.connection)
    conversations.create(ConversationRecord("conv1", 1, b"{}"), [StoredItem("item1", b'{"id": "item1"}')])
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'response_inputs'").fetchone()
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
    with path.open("r+b") as f:  # the page's header: its type and cell count
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 12)

    store = SqliteResponseStore(path)
    assert [store.get(f"r{n}") == dataclasses.replace(records[n], input=b"[]") for n in range(4)] == [True] * 4
    assert store.tip("th1") == "r3"
    assert SqliteConversationStore(store.connection).items("conv1") == [StoredItem("item1", b'{"id": "item1"}')]
    store.put(record("r4"))  # the fresh file takes writes
    assert store.get("r4") == record("r4")
    store.close()
    [aside] = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert aside.stat().st_mode & 0o777 == 0o600
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]


def test_a_schema_1_registry_gains_input_items_and_keeps_its_records(tmp_path: Path) -> None:

    path = tmp_path / "responses.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE responses (seq INTEGER PRIMARY KEY AUTOINCREMENT, response_id TEXT UNIQUE NOT NULL,"
        " thread_id TEXT NOT NULL, turn_id TEXT, working_dir TEXT NOT NULL, instructions TEXT,"
        " created_at REAL NOT NULL, stored INTEGER NOT NULL, body BLOB NOT NULL); PRAGMA user_version = 1;"
    )
    old = record("r1")
    conn.execute(
        "INSERT INTO responses (response_id, thread_id, turn_id, working_dir, instructions, created_at, stored, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (old.response_id, old.thread_id, old.turn_id, old.working_dir, None, 1.0, 1, old.body),
    )
    conn.commit()
    conn.close()
    store = SqliteResponseStore(path)
    assert store.get("r1") == old and old.input == b"[]"
    store.put(record("r2"))
    store.forget("r1")  # responses.delete: nothing the caller sent or got stays, the thread's order does
    forgotten = store.get("r1")
    assert forgotten is not None and (forgotten.stored, forgotten.body, forgotten.input) == (False, b"", b"[]")
    assert store.tip("th1") == "r2"
    store.close()


def test_a_forgotten_response_leaves_no_trace_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    store = SqliteResponseStore(path)
    secret = b'[{"type":"message","role":"user","content":[{"type":"input_text","text":"SECRET-7731 ' + b"x" * 5000
    store.put(dataclasses.replace(record("r1"), input=secret + b'"}]}]'))
    store.put(dataclasses.replace(record("r2"), input=b'[{"text":"KEPT-4410"}]'))
    store.close()  # checkpointed: the secret is in the database file itself now
    store = SqliteResponseStore(path)
    store.forget("r1")
    files = [p for p in tmp_path.iterdir() if p.name.startswith("responses.db")]
    on_disk = b"".join(p.read_bytes() for p in files)
    assert b"SECRET-7731" not in on_disk
    assert b"KEPT-4410" in on_disk  # the other response is still there
    store.close()


def sized(response_id: str, input_bytes: int) -> ResponseRecord:
    return dataclasses.replace(record(response_id), input=b"[" + b" " * (input_bytes - 2) + b"]")


def test_the_oldest_go_once_bodies_and_inputs_pass_max_bytes(tmp_path: Path) -> None:
    # What an agent library's re-sent transcripts do: every response keeps a growing input.
    body = len(record("r0").body)
    store = SqliteResponseStore(tmp_path / "responses.db", max_bytes=3 * (body + 1000))
    for n in range(5):
        store.put(sized(f"r{n}", 1000))
    assert [store.get(f"r{n}") is not None for n in range(5)] == [False, False, True, True, True]
    assert store.bytes == 3 * (body + 1000)
    store.put(dataclasses.replace(store.get("r2") or record("x"), input=b"[]"))  # an update frees its old input
    assert store.bytes == 2 * (body + 1000) + body + 2
    store.forget("r3")
    store.delete("r4")
    store.put(sized("huge", 10_000))  # the newest stays, whatever its size
    assert [store.get(r) is not None for r in ("r2", "r3", "r4", "huge")] == [False, False, False, True]
    total = store.bytes
    store.close()
    reopened = SqliteResponseStore(tmp_path / "responses.db", max_bytes=3 * (body + 1000))
    assert reopened.bytes == total == len(reopened.get("huge").body) + 10_000  # type: ignore[union-attr]
    reopened.close()


def test_a_forgotten_response_leaves_no_trace_in_the_file(tmp_path: Path, secure_delete_off: None) -> None:
    """As with an SQLite built with secure_delete off (upstream's default): the registry zeroes what it frees."""
    path = tmp_path / "responses.db"
    store = SqliteResponseStore(path)
    secret = dataclasses.replace(record("r1"), instructions="RESPONSE-SECRET-MARK " * 50)
    store.put(secret)
    store.put(forgotten(secret))
    store.close()
    assert b"RESPONSE-SECRET-MARK" not in b"".join(p.read_bytes() for p in tmp_path.glob("responses.db*"))


def test_an_update_does_not_write_the_input_again(tmp_path: Path) -> None:
    """A response's row is written as its turn is claimed, starts and ends: its input, which a re-sent
    transcript of screenshots makes megabytes, only the first time (and once more when forgotten)."""
    path = tmp_path / "responses.db"
    store = SqliteResponseStore(path)
    claim = dataclasses.replace(record("r1", status="in_progress"), turn_id=None, input=b"[" + b" " * 2_000_000 + b"]")
    store.put(claim)
    wal = tmp_path / "responses.db-wal"
    assert wal.stat().st_size > 2_000_000
    for update in (dataclasses.replace(claim, turn_id="t1"), dataclasses.replace(record("r1"), input=claim.input)):
        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        store.put(update)
        assert wal.stat().st_size < 100_000
        assert store.get("r1") == update
    store.forget("r1")
    assert store.get("r1") == forgotten(record("r1"))
    assert store.bytes == len(forgotten(record("r1")).body) + 2
    store.close()


V3_RESPONSES = (
    "CREATE TABLE responses (seq INTEGER PRIMARY KEY AUTOINCREMENT, response_id TEXT UNIQUE NOT NULL,"
    " thread_id TEXT NOT NULL, turn_id TEXT, working_dir TEXT NOT NULL, instructions TEXT,"
    " created_at REAL NOT NULL, stored INTEGER NOT NULL, body BLOB NOT NULL, input BLOB NOT NULL DEFAULT X'5B5D');"
    " CREATE INDEX responses_thread ON responses (thread_id, seq DESC);"
    " CREATE TABLE conversations (conversation_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL,"
    " metadata BLOB NOT NULL, touched INTEGER NOT NULL);"
    " INSERT INTO conversations VALUES ('conv_a', 1, X'7B7D', 1); PRAGMA user_version = 3;"
)
"""What a version-3 ``responses.db`` was (each input in its response's row), with a conversation."""


def test_a_schema_3_registry_moves_its_inputs_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    old = [dataclasses.replace(record(f"r{n}"), input=b'[{"n":%d}]' % n) for n in range(3)]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(V3_RESPONSES)
        conn.executemany(
            "INSERT INTO responses (response_id, thread_id, turn_id, working_dir, instructions, created_at, stored,"
            " body, input) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.response_id, r.thread_id, r.turn_id, r.working_dir, None, 1.0, 1, r.body, r.input) for r in old],
        )
        conn.execute("DELETE FROM responses WHERE response_id = 'r2'")  # the newest number stays used
        conn.commit()
    store = SqliteResponseStore(path)
    conn = store.connection
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (4,)
    assert [store.get(r.response_id) for r in old] == [*old[:2], None]
    assert store.tip("th1") == "r1" and store.bytes == sum(len(r.body) + len(r.input) for r in old[:2])
    assert conn.execute("SELECT metadata FROM conversations").fetchall() == [(b"{}",)]
    store.put(record("r3"))
    assert conn.execute("SELECT seq FROM responses WHERE response_id = 'r3'").fetchone() == (4,)
    store.delete("r0")  # its input goes with it
    assert conn.execute("SELECT seq FROM response_inputs ORDER BY seq").fetchall() == [(2,), (4,)]
    store.close()


def test_a_move_to_schema_4_that_fails_for_want_of_space_keeps_the_file_as_it_was(tmp_path: Path) -> None:
    """The move writes every input again (a 256 MiB registry: several times that, WAL included): a
    disk that fills then must not make the file look corrupt and be moved aside (every response id
    and conversation lost); the daemon does not start, and does once there is room."""
    path = tmp_path / "responses.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(V3_RESPONSES)
        conn.executemany(
            "INSERT INTO responses (response_id, thread_id, turn_id, working_dir, instructions, created_at, stored,"
            " body, input) VALUES (?, 'th1', 't', '/w', NULL, 1.0, 1, ?, ?)",
            [(f"r{n}", record(f"r{n}").body, b"[" + b" " * 1_000_000 + b"]") for n in range(8)],
        )
        conn.commit()
    size = path.stat().st_size
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 2_000_000, old_limit[1]))
    try:
        with pytest.raises(sqlite3.OperationalError):
            SqliteResponseStore(path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name] == []
    store = SqliteResponseStore(path)  # room again: moved over, nothing lost
    assert [store.get(f"r{n}") is not None for n in range(8)] == [True] * 8
    assert len(store.get("r7").input) == 1_000_002  # type: ignore[union-attr]
    store.close()


def test_deleted_says_whether_a_recorded_response_is_not_stored(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "responses.db")
    store.put(record("kept"))
    store.put(record("gone"))
    store.forget("gone")
    assert [store.deleted(r) for r in ("kept", "gone", "unknown")] == [False, True, False]
    store.close()
