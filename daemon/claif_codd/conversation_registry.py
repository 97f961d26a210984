"""The daemon's conversations (OpenAI's Conversations API) in SQLite, so that they survive its restarts.

They live in ``responses.db`` beside the responses they are run with
(:mod:`claif_codd.response_registry` opens the file, keeps it private and owns its schema version;
this module adds two tables to it): a row per conversation, a row per item in order. Each write is
one transaction in WAL mode. At most ``capacity`` conversations and ``max_bytes`` of
items are kept: the conversation written longest ago goes first. A deleted or evicted conversation,
or a deleted item, leaves nothing on disk (``secure_delete``, then a WAL checkpoint), as a deleted
response does.

A write the file refuses (a full disk, an I/O error) raises
:class:`~claif_cod.openai_compat.responses_store.ResponseStoreFailed` and changes nothing, but for the
items a response adds to its conversation once its turn has run: those are kept in memory (listed
with the conversation's items) and written before the next write to ``responses.db`` that succeeds,
either store's (:class:`RegistryConnection`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from claif_cod.openai_compat.conversations_store import ConversationRecord, StoredItem
from claif_cod.openai_compat.responses_store import ResponseStoreFailed

logger = logging.getLogger("claif_codd.conversation_registry")

DEFAULT_CAPACITY = 100_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    metadata        BLOB NOT NULL,
    touched         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_touched ON conversations (touched);
CREATE TABLE IF NOT EXISTS conversation_items (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    item_id         TEXT NOT NULL,
    body            BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS conversation_items_order ON conversation_items (conversation_id, seq);
"""
"""Added to ``responses.db`` by its schema version 3."""


class RegistryConnection(sqlite3.Connection):
    """``responses.db``'s one connection, shared by the responses and the conversations: what either
    store kept in memory because the file refused it is written (:meth:`flush`, oldest first) before
    any later write of either."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keepers: list[Keeper] = []

    def flush(self) -> None:
        """Raises :class:`sqlite3.Error` when the file still refuses; what was written stays written."""
        for keeper in self.keepers:
            keeper.flush()

    def kept(self) -> str:
        """What is still kept in memory, in words ("" for nothing)."""
        return ", ".join(words for keeper in self.keepers if (words := keeper.kept()))


class Keeper(Protocol):
    """A store that keeps in memory the writes the file refused."""

    def flush(self) -> None:
        """Write them, oldest first; :class:`sqlite3.Error` when the file still refuses."""

    def kept(self) -> str:
        """What it keeps, in words ("" for nothing)."""


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: all of it is committed, or none (a full disk fails the commit too)."""
    if conn.in_transaction:  # a ROLLBACK that failed left one open: nothing of it was committed
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # a failed commit may have rolled back already
            conn.execute("ROLLBACK")
        raise


def checkpoint(conn: sqlite3.Connection, path: str) -> None:
    """Empty the WAL into the file (after a deletion, so that what was deleted is nowhere on disk).
    A failure leaves the deletion committed, the freed pages in the WAL until the next checkpoint."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as exc:
        logger.warning("%s: the WAL could not be checkpointed (%s); deleted data stays in it until later", path, exc)


class SqliteConversationStore:
    """A :class:`~claif_cod.openai_compat.conversations_store.ConversationStore` on the response
    registry's connection; one thread only."""

    def __init__(
        self, conn: sqlite3.Connection, *, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self._conn = conn
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._path = str(conn.execute("SELECT file FROM pragma_database_list WHERE name = 'main'").fetchone()[0])
        self.bytes = 0
        """The bodies of every item, kept here so that a write does not sum the table."""
        self.count = 0
        self._recount()
        self._unsaved: dict[str, list[StoredItem]] = {}
        """Items a response added once its turn had run, which the file refused: written by :meth:`flush`."""
        self._evicted = False
        if isinstance(conn, RegistryConnection):
            conn.keepers.append(self)
            self._flush_all: Callable[[], None] = conn.flush
        else:
            self._flush_all = self.flush

    def create(self, record: ConversationRecord, items: Sequence[StoredItem]) -> None:
        def change() -> None:
            self._conn.execute(
                "INSERT INTO conversations (conversation_id, created_at, metadata, touched) VALUES (?, ?, ?, ?)",
                (record.conversation_id, record.created_at, record.metadata, self._next_touch()),
            )
            self.count += 1
            self._insert(record.conversation_id, items)

        self._write(change, "the conversation was not created")

    def get(self, conversation_id: str) -> ConversationRecord | None:
        row = self._conn.execute(
            "SELECT created_at, metadata FROM conversations WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        return None if row is None else ConversationRecord(conversation_id, int(row[0]), bytes(row[1]))

    def set_metadata(self, conversation_id: str, metadata: bytes) -> None:
        def change() -> None:
            self._conn.execute(
                "UPDATE conversations SET metadata = ?, touched = ? WHERE conversation_id = ?",
                (metadata, self._next_touch(), conversation_id),
            )

        self._write(change, "its metadata was not changed")

    def delete(self, conversation_id: str) -> None:
        self._write(lambda: self._remove(conversation_id), "the conversation was not deleted")
        checkpoint(self._conn, self._path)

    def append(self, conversation_id: str, items: Sequence[StoredItem], *, deferrable: bool = False) -> None:
        try:
            self._write(lambda: self._append(conversation_id, items), "no item was added")
        except ResponseStoreFailed as exc:
            if not deferrable:
                raise
            unsaved = self._unsaved.setdefault(conversation_id, [])
            if not unsaved:
                logger.warning(
                    "conversation registry %s cannot be written (%s): conversation %s keeps its new items in "
                    "memory until a write succeeds (they are lost if claif-codd stops before)",
                    self._path,
                    exc.reason,
                    conversation_id,
                )
            unsaved.extend(items)

    def items(self, conversation_id: str) -> list[StoredItem]:
        rows = self._conn.execute(
            "SELECT item_id, body FROM conversation_items WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        ).fetchall()
        stored = [StoredItem(str(item_id), bytes(body)) for item_id, body in rows]
        return stored + self._unsaved.get(conversation_id, [])

    def delete_item(self, conversation_id: str, item_id: str) -> bool:
        found = False

        def change() -> None:
            nonlocal found
            row = self._conn.execute(
                "SELECT seq, length(body) FROM conversation_items WHERE conversation_id = ? AND item_id = ?"
                " ORDER BY seq LIMIT 1",
                (conversation_id, item_id),
            ).fetchone()
            if row is not None:
                self._conn.execute("DELETE FROM conversation_items WHERE seq = ?", (row[0],))
                self.bytes -= int(row[1])
                found = True

        self._write(change, "the item was not deleted")
        if found:
            checkpoint(self._conn, self._path)
        return found

    def _write(self, change: Callable[[], None], outcome: str) -> None:
        """``change`` in one transaction, after what was kept in memory; raises ResponseStoreFailed
        (saying ``outcome``) when the file refuses it."""
        try:
            self._flush_all()
            with transaction(self._conn):
                change()
        except sqlite3.Error as exc:
            self._recount()
            raise ResponseStoreFailed(self._path, str(exc), outcome) from exc
        finally:
            evicted, self._evicted = self._evicted, False
        if evicted:
            checkpoint(self._conn, self._path)

    def kept(self) -> str:
        count = sum(len(items) for items in self._unsaved.values())
        return f"{count} conversation items" if count else ""

    def flush(self) -> None:
        while self._unsaved:
            conversation_id, items = next(iter(self._unsaved.items()))
            try:
                with transaction(self._conn):
                    self._append(conversation_id, items)
            except sqlite3.Error:
                self._recount()
                raise
            del self._unsaved[conversation_id]
            logger.info("conversation registry %s: the items kept for %s are written", self._path, conversation_id)
            evicted, self._evicted = self._evicted, False
            if evicted:
                checkpoint(self._conn, self._path)

    def _append(self, conversation_id: str, items: Sequence[StoredItem]) -> None:
        touched = self._conn.execute(
            "UPDATE conversations SET touched = ? WHERE conversation_id = ?", (self._next_touch(), conversation_id)
        ).rowcount
        if touched:  # (items kept in memory for a conversation deleted meanwhile go with it)
            self._insert(conversation_id, items)

    def _recount(self) -> None:
        """``bytes`` and ``count`` as the tables hold them (after a write that was rolled back)."""
        with contextlib.suppress(sqlite3.Error):
            self.bytes = int(
                self._conn.execute("SELECT COALESCE(SUM(length(body)), 0) FROM conversation_items").fetchone()[0]
            )
            self.count = int(self._conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    def _insert(self, conversation_id: str, items: Sequence[StoredItem]) -> None:
        self._conn.executemany(
            "INSERT INTO conversation_items (conversation_id, item_id, body) VALUES (?, ?, ?)",
            [(conversation_id, item.item_id, item.body) for item in items],
        )
        self.bytes += sum(len(item.body) for item in items)
        self._evict(keep=conversation_id)

    def _next_touch(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations").fetchone()[0])

    def _remove(self, conversation_id: str) -> None:
        size = self._conn.execute(
            "SELECT COALESCE(SUM(length(body)), 0) FROM conversation_items WHERE conversation_id = ?",
            (conversation_id,),
        ).fetchone()[0]
        self._conn.execute("DELETE FROM conversation_items WHERE conversation_id = ?", (conversation_id,))
        self.count -= self._conn.execute(
            "DELETE FROM conversations WHERE conversation_id = ?", (conversation_id,)
        ).rowcount
        self.bytes -= int(size)

    def _evict(self, *, keep: str) -> None:
        """The conversations written longest ago, past ``capacity`` or ``max_bytes``; never ``keep``.
        What they held leaves the disk as a deleted conversation's does (a checkpoint once committed)."""
        while self.count > self._capacity or self.bytes > self._max_bytes:
            oldest = self._conn.execute(
                "SELECT conversation_id FROM conversations WHERE conversation_id != ? ORDER BY touched LIMIT 1",
                (keep,),
            ).fetchone()
            if oldest is None:
                break
            self._remove(str(oldest[0]))
            self._evicted = True
