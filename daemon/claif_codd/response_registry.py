"""The daemon's Responses registry: response id → Codex thread, turn and body, in SQLite (and the
conversations, :mod:`claif_codd.conversation_registry`).

A separate file (``responses.db`` beside ``sessions.db``) with its own schema version, so the
session registry and this one evolve independently. Each ``put`` is one transaction in WAL mode, as
in :mod:`claif_codd.registry`: a response the daemon acknowledged survives the daemon being killed.
Only the daemon opens the file (the one holding the state directory, see :mod:`claif_codd.instance`), in
``locking_mode=EXCLUSIVE`` as ``sessions.db``: WAL's index lives in the daemon's own memory, not in a
shared ``-shm`` mapping, which a truncated or frozen ``-shm`` file would turn into a SIGBUS that
kills the daemon; another process opening the file while the daemon runs gets "database is locked".
The file is 0600 in the 0700 state directory. Only the newest
``capacity`` responses are kept, and at most ``max_bytes`` of their bodies and inputs (agent
libraries re-send the whole transcript each turn, and each response keeps its input). A file
that is not a readable database, or fails ``PRAGMA quick_check``, is moved aside
(``responses.db.corrupt-<time>``) and a fresh registry starts with what could still be read of it
(:mod:`claif_codd.response_salvage`): losing old response ids is better than a daemon that cannot
start, or one whose every request meets the damage.

A write the file refuses (a full disk, an I/O error) fails the request only while that request can
still fail as if it never happened: the record that claims a thread before the turn starts (the turn
is then not run) and ``responses.delete`` raise
:class:`~claif_cod.openai_compat.responses_store.ResponseStoreFailed` (a 503,
``response_registry_unwritable``). Once the turn has started, the answer is delivered whatever the
file says: a write it refuses then is kept in memory (``get`` and ``tip`` see it), a warning is
logged, and it is written before the next write to ``responses.db`` that succeeds (lost if the daemon
stops before), as the session registry does after a turn.

Responses still ``in_progress`` when the daemon stopped are marked ``failed`` on open: their
turn ended with the process that ran it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from claif_cod.openai_compat.responses_schema import Response, ResponseError
from claif_cod.openai_compat.responses_store import ResponseRecord, ResponseStoreFailed, forgotten
from claif_codd import conversation_registry
from claif_codd.conversation_registry import RegistryConnection, checkpoint, transaction
from claif_codd.registry import RegistrySchemaError, corruption, is_corruption
from claif_codd.response_salvage import Rescued, keep, rescue

logger = logging.getLogger("claif_codd.response_registry")

SCHEMA_VERSION = 4
"""1: the first; 2 adds ``input`` (the request's input items, for ``responses.input_items.list``);
3 adds the conversations and their items (:mod:`claif_codd.conversation_registry`); 4 moves each
input to a table of its own."""
DEFAULT_CAPACITY = 100_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_SIZE = "length(body) + length(input)"
_FIELDS = "response_id, thread_id, turn_id, working_dir, instructions, created_at, stored, body"
_ROWS = "responses JOIN response_inputs USING (seq)"
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
    body         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_thread ON responses (thread_id, seq DESC);
CREATE TABLE IF NOT EXISTS response_inputs (
    seq   INTEGER PRIMARY KEY,
    input BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS response_inputs_go_with_their_response AFTER DELETE ON responses
BEGIN
    DELETE FROM response_inputs WHERE seq = old.seq;
END;
"""
"""A response's input, which an agent library's re-sent transcript can make megabytes, has a table of
its own, written once: SQLite rewrites a whole row when any of its columns changes, and a response's
row changes as its turn starts and as it ends."""
_SET_ASIDE = "ALTER TABLE responses RENAME TO responses_3; DROP INDEX IF EXISTS responses_thread;"
_MOVE_BACK = f"""
INSERT INTO responses SELECT seq, {_FIELDS} FROM responses_3;
INSERT INTO response_inputs SELECT seq, input FROM responses_3;
DELETE FROM sqlite_sequence WHERE name = 'responses';
UPDATE sqlite_sequence SET name = 'responses' WHERE name = 'responses_3';
DROP TABLE responses_3;
"""
"""Schema 3 to 4 (around ``_SCHEMA``, in the transaction that sets the version): the table rebuilt
without ``input`` (SQLite before 3.35 cannot drop a column), the sequence of response numbers kept."""
_INTERRUPTED = "claif-codd stopped before this response completed"


class _Corrupt(Exception):
    """``quick_check`` found the file damaged; what could still be read of it is ``rescued``."""

    def __init__(self, problem: str, rescued: Rescued) -> None:
        super().__init__(problem)
        self.problem = problem
        self.rescued = rescued


class SqliteResponseStore:
    """A :class:`~claif_cod.openai_compat.responses_store.ResponseStore` in one SQLite file; one thread only."""

    def __init__(self, path: Path, *, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._path = Path(path)
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._unsaved: dict[str, ResponseRecord | None] = {}
        """Writes the file refused once their turn had started, oldest first (None: deleted)."""
        self._conn = self._open()
        self._conn.keepers.append(self)
        self.bytes = 0
        """The bodies and inputs of every row, kept here so that a put does not sum the table."""
        self._recount()
        self._fail_unfinished()

    @property
    def connection(self) -> sqlite3.Connection:
        """The file's connection, which :class:`~claif_codd.conversation_registry.SqliteConversationStore` shares."""
        return self._conn

    def get(self, response_id: str) -> ResponseRecord | None:
        if response_id in self._unsaved:
            return self._unsaved[response_id]
        rows = self._conn.execute(f"SELECT {_FIELDS}, input FROM {_ROWS} WHERE response_id = ?", (response_id,))
        return next(map(_record, rows), None)

    def deleted(self, response_id: str) -> bool:
        if response_id in self._unsaved:
            record = self._unsaved[response_id]
            return record is not None and not record.stored
        row = self._conn.execute("SELECT stored FROM responses WHERE response_id = ?", (response_id,)).fetchone()
        return row is not None and not row[0]

    def put(self, record: ResponseRecord) -> None:
        try:
            self._write(lambda: self._put(record))
        except sqlite3.Error as exc:
            if record.turn_id is None:  # the claim made before the turn: the request fails, nothing runs
                raise ResponseStoreFailed(str(self._path), str(exc)) from exc
            self._defer(record.response_id, record, exc)

    def delete(self, response_id: str) -> None:
        """A response that never happened (its turn did not start): taken back, whatever the file says."""
        try:
            self._write(lambda: self._delete(response_id))
        except sqlite3.Error as exc:
            self._defer(response_id, None, exc)

    def forget(self, response_id: str) -> None:
        record = self.get(response_id)
        if record is None:
            return
        gone = forgotten(record)  # an update: the record keeps its place (seq) in its thread
        try:
            self._write(lambda: self._put(gone))
        except sqlite3.Error as exc:
            if record.stored and not _in_progress(record.body):  # responses.delete: the caller is told
                raise ResponseStoreFailed(str(self._path), str(exc), "the response was not deleted") from exc
            self._defer(response_id, gone, exc)  # a request that failed before its caller saw the id
            return
        # secure_delete zeroed the freed pages; the checkpoint moves that into the file and empties
        # the WAL, so the deleted input and output are nowhere on disk.
        checkpoint(self._conn, str(self._path))

    def tip(self, thread_id: str) -> str | None:
        for response_id, record in reversed(self._unsaved.items()):
            if record is not None and record.thread_id == thread_id and not self._on_disk(response_id):
                return response_id  # a new record (an update keeps its row's place)
        gone = [response_id for response_id, record in self._unsaved.items() if record is None]
        rows = self._conn.execute(
            "SELECT response_id FROM responses WHERE thread_id = ? ORDER BY seq DESC LIMIT ?",
            (thread_id, len(gone) + 1),
        ).fetchall()
        return next((str(row[0]) for row in rows if row[0] not in gone), None)

    def close(self) -> None:
        try:
            self._conn.flush()
        except sqlite3.Error as exc:
            lost = self._conn.kept()
            logger.warning(
                "response registry %s cannot be written (%s): %s kept in memory are lost", self._path, exc, lost
            )
        self._conn.close()

    def _write(self, change: Callable[[], None]) -> None:
        """``change`` in one transaction, after what was kept in memory (of the conversations too)."""
        try:
            self._conn.flush()
            with transaction(self._conn):
                change()
        except sqlite3.Error:
            self._recount()
            raise

    def _defer(self, response_id: str, record: ResponseRecord | None, exc: sqlite3.Error) -> None:
        if response_id not in self._unsaved:
            logger.warning(
                "response registry %s cannot be written (%s): response %s is kept in memory until a write "
                "succeeds (it is lost if claif-codd stops before)",
                self._path,
                exc,
                response_id,
            )
        self._unsaved[response_id] = record

    def kept(self) -> str:
        return f"{len(self._unsaved)} responses" if self._unsaved else ""

    def flush(self) -> None:
        while self._unsaved:
            response_id, record = next(iter(self._unsaved.items()))
            try:
                with transaction(self._conn):
                    if record is None:
                        self._delete(response_id)
                    else:
                        self._put(record)
            except sqlite3.Error:
                self._recount()
                raise
            del self._unsaved[response_id]
            logger.info("response registry %s: response %s kept in memory is written", self._path, response_id)
            if record is not None and not record.stored:
                checkpoint(self._conn, str(self._path))

    def _recount(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.bytes = int(self._conn.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) FROM {_ROWS}").fetchone()[0])

    def _put(self, record: ResponseRecord) -> None:
        """An update writes the input again only when its length changed: each put of a response
        carries the same input but the one that forgets it (``ResponseStore.put``)."""
        values = (
            record.response_id, record.thread_id, record.turn_id, record.working_dir, record.instructions,
            record.created_at, int(record.stored), record.body,
        )  # fmt: skip
        row = self._conn.execute(
            f"SELECT seq, length(body), length(input) FROM {_ROWS} WHERE response_id = ?", (record.response_id,)
        ).fetchone()
        if row is None:
            seq = self._conn.execute(
                f"INSERT INTO responses ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values
            ).lastrowid
            self._conn.execute("INSERT INTO response_inputs (seq, input) VALUES (?, ?)", (seq, record.input))
            self.bytes += len(record.body) + len(record.input)
        else:
            seq, body_size, input_size = row
            self._conn.execute(
                "UPDATE responses SET thread_id = ?, turn_id = ?, working_dir = ?, instructions = ?, created_at = ?,"
                " stored = ?, body = ? WHERE seq = ?",
                (*values[1:], seq),
            )
            if len(record.input) != input_size:
                self._conn.execute("UPDATE response_inputs SET input = ? WHERE seq = ?", (record.input, seq))
            self.bytes += len(record.body) - body_size + len(record.input) - input_size
        self._evict()

    def _delete(self, response_id: str) -> None:
        self.bytes -= self._size_of(response_id=response_id)
        self._conn.execute("DELETE FROM responses WHERE response_id = ?", (response_id,))

    def _on_disk(self, response_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM responses WHERE response_id = ?", (response_id,)).fetchone()
        return row is not None

    def _size_of(self, *, response_id: str) -> int:
        row = self._conn.execute(f"SELECT {_SIZE} FROM {_ROWS} WHERE response_id = ?", (response_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def _evict(self) -> None:
        """Oldest first, past ``capacity`` rows or ``max_bytes``; the newest row always stays."""
        beyond = "WHERE seq <= (SELECT MAX(seq) FROM responses) - ?"
        over = self._conn.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) FROM {_ROWS} {beyond}", (self._capacity,))
        self.bytes -= int(over.fetchone()[0])
        self._conn.execute(f"DELETE FROM responses {beyond}", (self._capacity,))
        while self.bytes > self._max_bytes:
            older = f"FROM {_ROWS} WHERE seq < (SELECT MAX(seq) FROM responses)"
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

    def _open(self) -> RegistryConnection:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        try:
            return self._connect()
        except _Corrupt as exc:
            aside = self._move_aside()
            conn = self._open()
            try:
                keep(exc.rescued, conn)
            except BaseException:
                conn.close()
                raise
            responses, no_input, conversations = exc.rescued.counts(conn)
            logger.warning(
                "response registry %s is corrupt (%s): moved it aside to %s and kept the %d responses "
                "(%d of them without their input items) and %d conversations that could be read",
                self._path,
                exc.problem,
                aside,
                responses,
                no_input,
                conversations,
            )
            return conn
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):  # a full disk, an I/O error (a migration's): the file is kept as it is
                raise
            aside = self._move_aside()
            logger.warning("response registry %s is unreadable (%s): moved it aside to %s", self._path, exc, aside)
            return self._open()

    def _move_aside(self) -> Path:
        aside = self._path.with_name(f"{self._path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        for suffix in ("-wal", "-shm"):
            sidecar = self._path.with_name(self._path.name + suffix)
            if sidecar.exists():
                os.replace(sidecar, aside.with_name(aside.name + suffix))
        os.replace(self._path, aside)
        return aside

    def _connect(self) -> RegistryConnection:
        conn = sqlite3.connect(self._path, isolation_level=None, factory=RegistryConnection)
        try:
            # Only the daemon opens the file: exclusive locking, set before the first read, keeps WAL's
            # index in private memory instead of a shared ``-shm`` mapping, which anyone able to truncate
            # that file could turn into a SIGBUS that kills the daemon (as for sessions.db).
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            # A damaged page that nothing below reads would pass, and fail every request that meets it.
            problem = corruption(conn)
            if problem is not None:
                raise _Corrupt(problem, rescue(conn))
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:  # refused before anything changes the file
                raise RegistrySchemaError(f"written by a newer claif-codd (schema {version}): upgrade claif-codd")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")  # freed pages zeroed (Debian's build does so by default)
            before, after = (_SET_ASIDE, _MOVE_BACK) if version in (1, 2, 3) else ("", "")
            if version == 1:
                before = "ALTER TABLE responses ADD COLUMN input BLOB NOT NULL DEFAULT X'5B5D';" + before
            conn.executescript(
                f"BEGIN IMMEDIATE; {before} {_SCHEMA} {after} {conversation_registry.SCHEMA}"
                f" PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _fail_unfinished(self) -> None:
        rows = self._conn.execute(
            f'SELECT {_FIELDS}, input FROM {_ROWS} WHERE CAST(body AS TEXT) LIKE \'%"status":"in_progress"%\''
        ).fetchall()
        for row in rows:
            record = _record(row)
            response = msgspec.json.decode(record.body, type=Response)
            if response.status != "in_progress":
                continue
            response.status = "failed"
            response.error = ResponseError(code="server_error", message=_INTERRUPTED)
            with transaction(self._conn):  # a failure stops the start (claif_codd.run says why)
                self._put(dataclasses.replace(record, body=msgspec.json.encode(response)))


def _in_progress(body: bytes) -> bool:
    try:
        return msgspec.json.decode(body, type=Response).status == "in_progress"
    except msgspec.DecodeError:
        return False


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
