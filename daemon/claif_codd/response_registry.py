"""The daemon's Responses registry: response id → Codex thread, turn and body, in SQLite (and the
conversations, :mod:`claif_codd.conversation_registry`).

A separate file (``responses.db`` beside ``sessions.db``) with its own schema version, so the
session registry and this one evolve independently. Each ``put`` is one autocommitted statement
in WAL mode, as in :mod:`claif_codd.registry`: a response the daemon acknowledged survives the
daemon being killed. The file is 0600 in the 0700 state directory. Only the newest
``capacity`` responses are kept, and at most ``max_bytes`` of their bodies and inputs (agent
libraries re-send the whole transcript each turn, and each response keeps its input). A file
that is not a readable database is moved aside
(``responses.db.corrupt-<time>``) and an empty registry starts: losing old response ids is
better than a daemon that cannot start.

Responses still ``in_progress`` when the daemon stopped are marked ``failed`` on open: their
turn ended with the process that ran it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import time
from pathlib import Path

import msgspec

from claif_cod.openai_compat.responses_schema import Response, ResponseError
from claif_cod.openai_compat.responses_store import ResponseRecord, forgotten
from claif_codd import conversation_registry
from claif_codd.registry import RegistrySchemaError

logger = logging.getLogger("claif_codd.response_registry")

SCHEMA_VERSION = 3
"""1: the first; 2 adds ``input`` (the request's input items, for ``responses.input_items.list``);
3 adds the conversations and their items (:mod:`claif_codd.conversation_registry`)."""
DEFAULT_CAPACITY = 100_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_SIZE = "length(body) + length(input)"
_COLUMNS = "response_id, thread_id, turn_id, working_dir, instructions, created_at, stored, body, input"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id  TEXT UNIQUE NOT NULL,
    thread_id    TEXT NOT NULL,
    turn_id      TEXT,
    working_dir  TEXT NOT NULL,
    instructions TEXT,
    created_at   REAL NOT NULL,
    stored       INTEGER NOT NULL,
    body         BLOB NOT NULL,
    input        BLOB NOT NULL DEFAULT X'5B5D'
);
CREATE INDEX IF NOT EXISTS responses_thread ON responses (thread_id, seq DESC);
"""
_INTERRUPTED = "claif-codd stopped before this response completed"


class SqliteResponseStore:
    """A :class:`~claif_cod.openai_compat.responses_store.ResponseStore` in one SQLite file; one thread only."""

    def __init__(self, path: Path, *, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._path = Path(path)
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._conn = self._open()
        self.bytes = int(self._conn.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) FROM responses").fetchone()[0])
        """The bodies and inputs of every row, kept here so that a put does not sum the table."""
        self._fail_unfinished()

    @property
    def connection(self) -> sqlite3.Connection:
        """The file's connection, which :class:`~claif_codd.conversation_registry.SqliteConversationStore` shares."""
        return self._conn

    def get(self, response_id: str) -> ResponseRecord | None:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM responses WHERE response_id = ?", (response_id,)).fetchall()
        return _record(rows[0]) if rows else None

    def put(self, record: ResponseRecord) -> None:
        values = (
            record.response_id, record.thread_id, record.turn_id, record.working_dir, record.instructions,
            record.created_at, int(record.stored), record.body, record.input,
        )  # fmt: skip
        old = self._size_of(response_id=record.response_id)
        updated = self._conn.execute(
            "UPDATE responses SET thread_id = ?, turn_id = ?, working_dir = ?, instructions = ?, created_at = ?,"
            " stored = ?, body = ?, input = ? WHERE response_id = ?",
            (*values[1:], record.response_id),
        ).rowcount
        if not updated:
            self._conn.execute(f"INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        self.bytes += len(record.body) + len(record.input) - old
        self._evict()

    def delete(self, response_id: str) -> None:
        self.bytes -= self._size_of(response_id=response_id)
        self._conn.execute("DELETE FROM responses WHERE response_id = ?", (response_id,))

    def _size_of(self, *, response_id: str) -> int:
        row = self._conn.execute(f"SELECT {_SIZE} FROM responses WHERE response_id = ?", (response_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def _evict(self) -> None:
        """Oldest first, past ``capacity`` rows or ``max_bytes``; the newest row always stays."""
        beyond = "FROM responses WHERE seq <= (SELECT MAX(seq) FROM responses) - ?"
        over = self._conn.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) {beyond}", (self._capacity,)).fetchone()[0]
        self.bytes -= int(over)
        self._conn.execute(f"DELETE {beyond}", (self._capacity,))
        while self.bytes > self._max_bytes:
            older = "FROM responses WHERE seq < (SELECT MAX(seq) FROM responses)"
            rows = self._conn.execute(f"SELECT seq, {_SIZE} {older} ORDER BY seq LIMIT 256").fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for seq, size in rows:
                self.bytes -= int(size)
                last = seq
                if self.bytes <= self._max_bytes:
                    break
            self._conn.execute("DELETE FROM responses WHERE seq <= ?", (last,))

    def forget(self, response_id: str) -> None:
        record = self.get(response_id)
        if record is not None:
            self.put(forgotten(record))  # an update: the record keeps its place (seq) in its thread
            # secure_delete zeroed the freed pages; the checkpoint moves that into the file and empties
            # the WAL, so the deleted input and output are nowhere on disk.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def tip(self, thread_id: str) -> str | None:
        rows = self._conn.execute(
            "SELECT response_id FROM responses WHERE thread_id = ? ORDER BY seq DESC LIMIT 1", (thread_id,)
        ).fetchall()
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        self._conn.close()

    def _open(self) -> sqlite3.Connection:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            aside = self._path.with_name(f"{self._path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
            logger.warning("response registry %s is unreadable (%s): moved it aside to %s", self._path, exc, aside)
            for suffix in ("-wal", "-shm"):
                sidecar = self._path.with_name(self._path.name + suffix)
                if sidecar.exists():
                    os.replace(sidecar, aside.with_name(aside.name + suffix))
            os.replace(self._path, aside)
            return self._open()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:  # refused before anything changes the file
                raise RegistrySchemaError(f"written by a newer claif-codd (schema {version}): upgrade claif-codd")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")  # freed pages zeroed (Debian's build does so by default)
            if version == 1:
                conn.execute("ALTER TABLE responses ADD COLUMN input BLOB NOT NULL DEFAULT X'5B5D'")
            conn.executescript(_SCHEMA + conversation_registry.SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        except BaseException:
            conn.close()
            raise
        return conn

    def _fail_unfinished(self) -> None:
        rows = self._conn.execute(
            f'SELECT {_COLUMNS} FROM responses WHERE CAST(body AS TEXT) LIKE \'%"status":"in_progress"%\''
        ).fetchall()
        for row in rows:
            record = _record(row)
            response = msgspec.json.decode(record.body, type=Response)
            if response.status != "in_progress":
                continue
            response.status = "failed"
            response.error = ResponseError(code="server_error", message=_INTERRUPTED)
            self.put(dataclasses.replace(record, body=msgspec.json.encode(response)))


def _record(row: tuple[object, ...]) -> ResponseRecord:
    response_id, thread_id, turn_id, working_dir, instructions, created_at, stored, body, input_items = row
    return ResponseRecord(
        response_id=str(response_id),
        thread_id=str(thread_id),
        turn_id=None if turn_id is None else str(turn_id),
        working_dir=str(working_dir),
        instructions=None if instructions is None else str(instructions),
        created_at=float(str(created_at)),
        stored=bool(stored),
        body=body if isinstance(body, bytes) else str(body).encode(),
        input=input_items if isinstance(input_items, bytes) else str(input_items).encode(),
    )
