"""The daemon's conversations in ``responses.db``: reopening, item order, deleting items, eviction with
its bookkeeping, schema migration and refusal, and what a deletion leaves on disk."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path

import msgspec
import pytest

from claif_cod.openai_compat.conversations_store import ConversationRecord, StoredItem
from claif_cod.openai_compat.responses_schema import Response
from claif_cod.openai_compat.responses_store import ResponseRecord
from claif_codd.conversation_registry import SqliteConversationStore
from claif_codd.response_registry import SCHEMA_VERSION, SqliteResponseStore


def conversation(conversation_id: str, created_at: int = 1, **metadata: str) -> ConversationRecord:
    return ConversationRecord(conversation_id, created_at, json.dumps(metadata).encode())


def item(item_id: str, text: str = "hello", *, size: int | None = None) -> StoredItem:
    """A user message as ``conversations.items.list`` lists it; ``size``: its body padded to that many bytes."""
    body = {"type": "message", "id": item_id, "role": "user", "content": [{"type": "input_text", "text": text}]}
    encoded = json.dumps(body).encode()
    if size is not None:
        assert len(encoded) <= size
        body["content"][0]["text"] = text + "x" * (size - len(encoded))  # type: ignore[index]
        encoded = json.dumps(body).encode()
        assert len(encoded) == size
    return StoredItem(item_id, encoded)


def response(response_id: str) -> ResponseRecord:
    body = Response(id=response_id, created_at=1, model="m", status="completed", output=[])
    return ResponseRecord(
        response_id, "th1", "turn-" + response_id, "/w", None, 1.0, True, msgspec.json.encode(body), b'[{"x":1}]'
    )


class Opened:
    """``responses.db`` as the daemon opens it: the response registry, and the conversations on its connection."""

    def __init__(self, path: Path, *, capacity: int | None = None, max_bytes: int | None = None) -> None:
        self.responses = SqliteResponseStore(path)
        limits = {k: v for k, v in (("capacity", capacity), ("max_bytes", max_bytes)) if v is not None}
        self.conversations = SqliteConversationStore(self.responses.connection, **limits)

    def ids(self) -> list[str]:
        rows = self.responses.connection.execute("SELECT conversation_id FROM conversations ORDER BY conversation_id")
        return [str(row[0]) for row in rows]

    def check_books(self) -> None:
        """``bytes`` and ``count`` are what the tables hold."""
        conn = self.responses.connection
        [(total,)] = conn.execute("SELECT COALESCE(SUM(length(body)), 0) FROM conversation_items").fetchall()
        [(count,)] = conn.execute("SELECT COUNT(*) FROM conversations").fetchall()
        assert (self.conversations.bytes, self.conversations.count) == (total, count)
        [(orphans,)] = conn.execute(
            "SELECT COUNT(*) FROM conversation_items"
            " WHERE conversation_id NOT IN (SELECT conversation_id FROM conversations)"
        ).fetchall()
        assert orphans == 0  # an evicted or deleted conversation takes its items with it

    def close(self) -> None:
        self.responses.close()


def on_disk(directory: Path) -> bytes:
    """``responses.db`` and its ``-wal``, byte for byte."""
    return b"".join(
        (directory / name).read_bytes() for name in ("responses.db", "responses.db-wal") if (directory / name).exists()
    )


def test_conversations_and_items_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    db = Opened(path)
    db.responses.put(response("r1"))
    db.conversations.create(conversation("conv_a", 10, topic="cats"), [item("msg_1", "one"), item("msg_2", "two")])
    db.conversations.create(conversation("conv_b", 20), [])
    db.conversations.append("conv_a", [item("msg_3", "three")])
    db.conversations.set_metadata("conv_b", b'{"topic":"dogs"}')
    db.conversations.append("conv_b", [item("msg_4", "four")])
    db.check_books()
    expected_a = [item("msg_1", "one"), item("msg_2", "two"), item("msg_3", "three")]
    assert db.conversations.items("conv_a") == expected_a
    books = (db.conversations.bytes, db.conversations.count)
    db.close()
    assert os.stat(path).st_mode & 0o777 == 0o600

    db = Opened(path)
    assert db.conversations.get("conv_a") == conversation("conv_a", 10, topic="cats")
    assert db.conversations.get("conv_b") == ConversationRecord("conv_b", 20, b'{"topic":"dogs"}')
    assert db.conversations.get("conv_missing") is None
    assert db.conversations.items("conv_a") == expected_a  # in the order they were added
    assert db.conversations.items("conv_b") == [item("msg_4", "four")]
    assert db.conversations.items("conv_missing") == []
    assert (db.conversations.bytes, db.conversations.count) == books
    db.check_books()
    assert db.responses.get("r1") == response("r1")  # the responses beside them are untouched
    db.close()


def test_items_keep_their_order_and_delete_item_takes_exactly_one(tmp_path: Path) -> None:
    db = Opened(tmp_path / "responses.db")
    db.conversations.create(conversation("conv_a"), [item(f"msg_{n}", f"text {n}") for n in range(5)])
    db.conversations.create(conversation("conv_b"), [item("msg_2", "b's own msg_2")])
    db.conversations.append("conv_a", [item("msg_5", "text 5"), item("msg_6", "text 6")])
    assert [i.item_id for i in db.conversations.items("conv_a")] == [f"msg_{n}" for n in range(7)]

    assert db.conversations.delete_item("conv_a", "msg_2") is True
    assert [i.item_id for i in db.conversations.items("conv_a")] == [f"msg_{n}" for n in (0, 1, 3, 4, 5, 6)]
    assert db.conversations.items("conv_b") == [item("msg_2", "b's own msg_2")]  # same id, other conversation
    db.check_books()
    assert db.conversations.delete_item("conv_a", "msg_2") is False  # gone already
    assert db.conversations.delete_item("conv_a", "msg_unknown") is False
    assert db.conversations.delete_item("conv_missing", "msg_0") is False
    assert len(db.conversations.items("conv_a")) == 6
    db.check_books()

    db.conversations.append("conv_a", [item("msg_7", "text 7")])  # after the last, not in the freed place
    assert [i.item_id for i in db.conversations.items("conv_a")][-2:] == ["msg_6", "msg_7"]
    db.conversations.delete("conv_a")
    assert db.conversations.get("conv_a") is None and db.conversations.items("conv_a") == []
    db.conversations.delete("conv_a")  # nothing happens a second time
    assert db.ids() == ["conv_b"]
    db.check_books()
    db.close()


def test_past_capacity_the_least_recently_written_conversation_goes(tmp_path: Path) -> None:
    db = Opened(tmp_path / "responses.db", capacity=2)
    db.conversations.create(conversation("conv_1"), [item("msg_1")])
    db.conversations.create(conversation("conv_2"), [item("msg_2")])
    db.check_books()
    db.conversations.create(conversation("conv_3"), [item("msg_3")])
    assert db.ids() == ["conv_2", "conv_3"]
    db.check_books()
    db.conversations.append("conv_2", [item("msg_2b")])  # conv_2 is now the most recently written
    db.conversations.create(conversation("conv_4"), [])
    assert db.ids() == ["conv_2", "conv_4"]
    db.check_books()
    db.conversations.set_metadata("conv_2", b'{"k":"v"}')  # a metadata update is a write too
    db.conversations.create(conversation("conv_5"), [])
    assert db.ids() == ["conv_2", "conv_5"]
    assert [i.item_id for i in db.conversations.items("conv_2")] == ["msg_2", "msg_2b"]
    db.check_books()
    db.close()

    db = Opened(tmp_path / "responses.db", capacity=1)  # a smaller capacity applies at the next write
    db.check_books()
    db.conversations.append("conv_5", [item("msg_5")])
    assert db.ids() == ["conv_5"]
    db.check_books()
    db.close()


def test_past_max_bytes_the_least_recently_written_conversation_goes_never_the_one_written(
    tmp_path: Path,
) -> None:
    size = 200
    db = Opened(tmp_path / "responses.db", max_bytes=3 * size)
    for n in (1, 2, 3):
        db.conversations.create(conversation(f"conv_{n}"), [item(f"msg_{n}", size=size)])
        db.check_books()
    assert db.conversations.bytes == 3 * size and db.ids() == ["conv_1", "conv_2", "conv_3"]

    db.conversations.append("conv_1", [item("msg_1b", size=size)])  # conv_1 written last: conv_2 goes
    assert db.ids() == ["conv_1", "conv_3"] and db.conversations.bytes == 3 * size
    db.check_books()

    db.conversations.append("conv_1", [item("msg_1c", size=size)])  # 4 * size: conv_3 goes
    assert db.ids() == ["conv_1"] and db.conversations.bytes == 3 * size
    db.check_books()

    db.conversations.append("conv_1", [item("msg_1d", size=size)])  # over, but the one being written stays
    assert db.ids() == ["conv_1"] and db.conversations.bytes == 4 * size
    assert [i.item_id for i in db.conversations.items("conv_1")] == ["msg_1", "msg_1b", "msg_1c", "msg_1d"]
    db.check_books()

    db.conversations.create(conversation("conv_4"), [item("msg_4", size=size)])  # now conv_1 goes
    assert db.ids() == ["conv_4"] and db.conversations.bytes == size
    db.check_books()
    db.conversations.create(conversation("conv_huge"), [item(f"msg_h{n}", size=size) for n in range(5)])
    assert db.ids() == ["conv_huge"] and db.conversations.bytes == 5 * size
    db.check_books()
    assert db.conversations.delete_item("conv_huge", "msg_h0")
    db.check_books()
    db.close()

    db = Opened(tmp_path / "responses.db", max_bytes=3 * size)
    assert (db.conversations.bytes, db.conversations.count) == (4 * size, 1)
    db.check_books()
    db.close()


V2_SCHEMA = (
    "CREATE TABLE responses (seq INTEGER PRIMARY KEY AUTOINCREMENT, response_id TEXT UNIQUE NOT NULL,"
    " thread_id TEXT NOT NULL, turn_id TEXT, working_dir TEXT NOT NULL, instructions TEXT,"
    " created_at REAL NOT NULL, stored INTEGER NOT NULL, body BLOB NOT NULL, input BLOB NOT NULL DEFAULT X'5B5D');"
    " CREATE INDEX responses_thread ON responses (thread_id, seq DESC); PRAGMA user_version = 2;"
)
"""What a version-2 ``responses.db`` was (before conversations)."""


def test_a_schema_2_registry_is_migrated_keeping_its_responses(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    old = [response("r1"), response("r2")]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(V2_SCHEMA)
        conn.executemany(
            "INSERT INTO responses (response_id, thread_id, turn_id, working_dir, instructions, created_at, stored,"
            " body, input) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.response_id, r.thread_id, r.turn_id, r.working_dir, None, 1.0, 1, r.body, r.input) for r in old],
        )
        conn.commit()
    db = Opened(path)
    assert [db.responses.get(r.response_id) for r in old] == old
    assert db.responses.tip("th1") == "r2"
    assert db.responses.connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert (db.conversations.bytes, db.conversations.count) == (0, 0)
    db.conversations.create(conversation("conv_a"), [item("msg_1", "after the migration")])
    db.close()

    db = Opened(path)  # a file of this version opens as it is
    assert db.conversations.items("conv_a") == [item("msg_1", "after the migration")]
    assert [db.responses.get(r.response_id) for r in old] == old
    db.check_books()
    db.close()


def test_a_registry_from_a_newer_daemon_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE future (x); INSERT INTO future VALUES ('FUTURE-ROW');"
            f" PRAGMA user_version = {SCHEMA_VERSION + 1};"
        )
    with pytest.raises(RuntimeError, match="newer claif-codd"):
        SqliteResponseStore(path)
    assert [p.name for p in tmp_path.glob("responses.db*")] == ["responses.db"]  # not moved aside, no WAL left
    with contextlib.closing(sqlite3.connect(path)) as conn:  # refused, not discarded nor migrated
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("future",)]
        assert conn.execute("SELECT x FROM future").fetchall() == [("FUTURE-ROW",)]


SECRET = "CONVERSATION-SECRET-5521"


@pytest.mark.parametrize("where", ["checkpointed into the file", "still in the WAL"])
@pytest.mark.parametrize("size", [200, 9000], ids=["small", "overflowing a page"])
def test_a_deleted_conversation_leaves_no_trace_on_disk(
    tmp_path: Path, secure_delete_off: None, where: str, size: int
) -> None:
    """Even where SQLite's build leaves ``secure_delete`` off (upstream's default): its items and its metadata."""
    path = tmp_path / "responses.db"
    db = Opened(path)
    db.conversations.create(conversation("conv_kept"), [item("msg_k", "KEPT-CONVERSATION-8812")])
    db.conversations.create(
        conversation("conv_secret", note=SECRET), [item("msg_1", SECRET, size=size), item("msg_2", SECRET)]
    )
    db.conversations.append("conv_secret", [item("msg_3", SECRET, size=size)])
    if where == "checkpointed into the file":
        db.close()
        assert SECRET.encode() in path.read_bytes()
        db = Opened(path)
    else:
        assert SECRET.encode() in on_disk(tmp_path)
    db.conversations.delete("conv_secret")
    assert SECRET.encode() not in on_disk(tmp_path)
    assert b"KEPT-CONVERSATION-8812" in on_disk(tmp_path)  # what was not deleted is still there
    db.check_books()
    db.close()
    assert SECRET.encode() not in on_disk(tmp_path)


@pytest.mark.parametrize("where", ["checkpointed into the file", "still in the WAL"])
@pytest.mark.parametrize("size", [200, 9000], ids=["small", "overflowing a page"])
def test_a_deleted_item_leaves_no_trace_on_disk(tmp_path: Path, secure_delete_off: None, where: str, size: int) -> None:
    path = tmp_path / "responses.db"
    db = Opened(path)
    db.conversations.create(
        conversation("conv_a"),
        [item("msg_1", "KEPT-BEFORE-3301"), item("msg_2", SECRET, size=size), item("msg_3", "KEPT-AFTER-3302")],
    )
    if where == "checkpointed into the file":
        db.close()
        assert SECRET.encode() in path.read_bytes()
        db = Opened(path)
    db.conversations.delete_item("conv_a", "msg_2")
    disk = on_disk(tmp_path)
    assert SECRET.encode() not in disk
    assert b"KEPT-BEFORE-3301" in disk and b"KEPT-AFTER-3302" in disk
    assert [i.item_id for i in db.conversations.items("conv_a")] == ["msg_1", "msg_3"]
    db.check_books()
    db.close()


def test_an_evicted_conversation_leaves_no_trace_on_disk(tmp_path: Path, secure_delete_off: None) -> None:
    db = Opened(tmp_path / "responses.db", capacity=1)
    db.conversations.create(conversation("conv_old", note=SECRET), [item("msg_1", SECRET, size=9000)])
    assert SECRET.encode() in on_disk(tmp_path)
    db.conversations.create(conversation("conv_new"), [item("msg_2", "KEPT-NEWEST-7741")])  # past capacity
    assert db.ids() == ["conv_new"]
    disk = on_disk(tmp_path)
    assert SECRET.encode() not in disk and b"KEPT-NEWEST-7741" in disk
    db.check_books()
    db.close()
