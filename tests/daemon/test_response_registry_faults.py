"""``responses.db`` when it cannot be written (a full disk, an I/O error): a write a request depends on
before anything happened raises ``ResponseStoreFailed`` naming the file (a 503, nothing changed); a
write after a response's turn ran is kept in memory and made with the next write that succeeds.

The full disk is ``DiskFull``: the registry's connection (``sqlite3.connect``'s factory) raises
SQLite's own ``database or disk is full`` for every statement that writes while ``full`` is set; the
first test fills a real page limit instead."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from claif_cod.openai_compat.conversations_store import ConversationRecord, StoredItem
from claif_cod.openai_compat.errors import translate
from claif_cod.openai_compat.responses_schema import Response
from claif_cod.openai_compat.responses_store import ResponseRecord, ResponseStoreFailed, forgotten
from claif_codd.conversation_registry import SqliteConversationStore
from claif_codd.response_registry import SqliteResponseStore

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def record(response_id: str, *, turn: bool = True, status: str = "completed", size: int = 0) -> ResponseRecord:
    body = Response(id=response_id, created_at=1, model="m", status=status, output=[])  # type: ignore[arg-type]
    return ResponseRecord(
        response_id,
        "th1",
        f"turn-{response_id}" if turn else None,
        "/w",
        None,
        1.0,
        True,
        msgspec.json.encode(body) + b" " * size,
        b'[{"type":"message"}]',
    )


class DiskFull:
    """While ``full``, every statement that writes fails on ``responses.db``'s connection."""

    def __init__(self) -> None:
        self.full = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[DiskFull]:
        connect = sqlite3.connect
        disk = self

        def failing_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            base = kwargs.get("factory", sqlite3.Connection)

            class Failing(base):  # type: ignore[misc, valid-type]
                def execute(self, sql: str, *rest: Any) -> sqlite3.Cursor:
                    disk.check(sql)
                    return super().execute(sql, *rest)  # type: ignore[no-any-return]

                def executemany(self, sql: str, *rest: Any) -> sqlite3.Cursor:
                    disk.check(sql)
                    return super().executemany(sql, *rest)  # type: ignore[no-any-return]

            return connect(*args, **{**kwargs, "factory": Failing})

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sqlite3, "connect", failing_connect)
            yield self

    def check(self, sql: str) -> None:
        if self.full and sql.lstrip().split(None, 1)[0].upper() in WRITES:
            raise sqlite3.OperationalError("database or disk is full")


@pytest.fixture
def disk() -> Iterator[DiskFull]:
    with DiskFull().installed() as installed:
        yield installed


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "responses.db"


def books(store: SqliteResponseStore, conversations: SqliteConversationStore | None = None) -> None:
    """What the stores count is what the tables hold."""
    conn = store.connection
    [(total,)] = conn.execute(
        "SELECT COALESCE(SUM(length(body) + length(input)), 0) FROM responses JOIN response_inputs USING (seq)"
    ).fetchall()
    assert store.bytes == total
    if conversations is not None:
        [(items,)] = conn.execute("SELECT COALESCE(SUM(length(body)), 0) FROM conversation_items").fetchall()
        [(count,)] = conn.execute("SELECT COUNT(*) FROM conversations").fetchall()
        assert (conversations.bytes, conversations.count) == (items, count)


def claim_many(store: SqliteResponseStore, n: int) -> None:
    for i in range(n):
        store.put(record(f"r{i}", turn=False, size=2000))


def test_a_claim_a_full_disk_refuses_raises_a_503_naming_the_file(path: Path) -> None:
    store = SqliteResponseStore(path)
    store.put(record("kept"))
    store.connection.execute("PRAGMA max_page_count = 1")  # as good as a full disk for this connection
    with pytest.raises(ResponseStoreFailed) as info:
        claim_many(store, 200)
    assert str(path) in str(info.value) and "full" in info.value.reason and "the turn was not run" in str(info.value)
    failure = translate(info.value)
    assert (failure.status, failure.detail.code) == (503, "response_registry_unwritable")
    assert store.get("kept") == record("kept")
    books(store)
    store.close()


def test_a_claim_refused_leaves_nothing(disk: DiskFull, path: Path) -> None:
    store = SqliteResponseStore(path)
    disk.full = True
    with pytest.raises(ResponseStoreFailed):
        store.put(record("r1", turn=False))
    assert store.get("r1") is None and store.tip("th1") is None
    disk.full = False
    store.close()
    store = SqliteResponseStore(path)
    assert store.get("r1") is None
    store.close()


def test_a_write_after_the_turn_started_is_kept_and_written_later(
    disk: DiskFull, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="claif_codd.response_registry")
    store = SqliteResponseStore(path)
    store.put(record("r1", turn=False, status="in_progress"))  # the claim
    disk.full = True
    store.put(record("r1", status="in_progress"))  # the turn started
    store.put(record("r1", size=100))  # and ended: the answer goes out
    assert store.get("r1") == record("r1", size=100) and store.tip("th1") == "r1"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(path) in warning and "r1" in warning and "database or disk is full" in warning
    with pytest.raises(ResponseStoreFailed):
        store.put(record("r2", turn=False))  # the next request cannot claim: it fails, nothing runs
    disk.full = False
    store.put(record("r2", turn=False))  # the next write that succeeds makes r1's first
    assert store.tip("th1") == "r2"
    books(store)
    store.close()
    store = SqliteResponseStore(path)
    assert store.get("r1") == record("r1", size=100)
    store.close()


def test_taking_back_a_response_that_never_happened_is_kept_too(disk: DiskFull, path: Path) -> None:
    store = SqliteResponseStore(path)
    store.put(record("r1"))
    store.put(record("r2", turn=False))  # claimed; then its turn could not start
    disk.full = True
    store.delete("r2")  # no exception: the caller is told why the turn did not start
    assert store.get("r2") is None and store.tip("th1") == "r1"
    store.forget("r3")  # nothing to forget
    disk.full = False
    store.close()  # written on close
    store = SqliteResponseStore(path)
    assert store.get("r2") is None and store.tip("th1") == "r1"
    store.close()


def test_responses_delete_is_refused_while_a_request_given_up_is_taken_back(disk: DiskFull, path: Path) -> None:
    store = SqliteResponseStore(path)
    store.put(record("done"))
    store.put(record("abandoned", status="in_progress"))
    disk.full = True
    with pytest.raises(ResponseStoreFailed) as info:
        store.forget("done")
    assert "the response was not deleted" in str(info.value)
    assert store.get("done") == record("done")
    store.forget("abandoned")  # a request that failed before its caller saw the id
    assert store.get("abandoned") == forgotten(record("abandoned", status="in_progress"))
    disk.full = False
    store.forget("done")
    assert store.get("done") == forgotten(record("done"))
    store.close()
    store = SqliteResponseStore(path)
    assert store.get("abandoned") == forgotten(record("abandoned", status="in_progress"))
    store.close()


def test_a_conversation_write_refused_changes_nothing(disk: DiskFull, path: Path) -> None:
    store = SqliteResponseStore(path)
    conversations = SqliteConversationStore(store.connection)
    conversations.create(ConversationRecord("c1", 1, b"{}"), [StoredItem("i1", b'{"id":"i1"}')])
    disk.full = True
    attempts = {
        "the conversation was not created": lambda: conversations.create(ConversationRecord("c2", 1, b"{}"), []),
        "its metadata was not changed": lambda: conversations.set_metadata("c1", b'{"a":"b"}'),
        "no item was added": lambda: conversations.append("c1", [StoredItem("i2", b'{"id":"i2"}')]),
        "the item was not deleted": lambda: conversations.delete_item("c1", "i1"),
        "the conversation was not deleted": lambda: conversations.delete("c1"),
    }
    for outcome, attempt in attempts.items():
        with pytest.raises(ResponseStoreFailed) as info:
            attempt()
        assert outcome in str(info.value) and str(path) in str(info.value)
        failure = translate(info.value)
        assert (failure.status, failure.detail.code) == (503, "response_registry_unwritable")
    assert conversations.get("c2") is None
    assert conversations.get("c1") == ConversationRecord("c1", 1, b"{}")
    assert conversations.items("c1") == [StoredItem("i1", b'{"id":"i1"}')]
    books(store, conversations)
    store.close()


def test_a_turns_items_are_kept_and_written_by_the_next_write_of_either_store(disk: DiskFull, path: Path) -> None:
    store = SqliteResponseStore(path)
    conversations = SqliteConversationStore(store.connection)
    conversations.create(ConversationRecord("c1", 1, b"{}"), [StoredItem("i1", b'{"id":"i1"}')])
    disk.full = True
    turn = [StoredItem("i2", b'{"id":"i2"}'), StoredItem("i3", b'{"id":"i3"}')]
    conversations.append("c1", turn, deferrable=True)  # the response's turn ran: its answer goes out
    assert conversations.items("c1") == [StoredItem("i1", b'{"id":"i1"}'), *turn]
    disk.full = False
    store.put(record("r1", turn=False))  # a response's write makes the conversation's too
    books(store, conversations)
    store.close()
    store = SqliteResponseStore(path)
    conversations = SqliteConversationStore(store.connection)
    assert conversations.items("c1") == [StoredItem("i1", b'{"id":"i1"}'), *turn]
    store.close()


def test_what_cannot_be_written_by_the_stop_is_said_to_be_lost(
    disk: DiskFull, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteResponseStore(path)
    conversations = SqliteConversationStore(store.connection)
    conversations.create(ConversationRecord("c1", 1, b"{}"), [])
    store.put(record("r1", turn=False, status="in_progress"))
    disk.full = True
    store.put(dataclasses.replace(record("r1"), body=b"{}"))
    conversations.append("c1", [StoredItem("i1", b"{}"), StoredItem("i2", b"{}")], deferrable=True)
    caplog.set_level(logging.WARNING, logger="claif_codd.response_registry")
    store.close()
    assert any("1 responses, 2 conversation items kept in memory are lost" in r.getMessage() for r in caplog.records), (
        caplog.text
    )
