"""The daemon's conversations (OpenAI's Conversations API) in SQLite, so that they survive its restarts.

They live in ``responses.db`` beside the responses they are run with
(:mod:`claif_codd.response_registry` opens the file, keeps it private and owns its schema version;
this module adds two tables to it): a row per conversation, a row per item in order. Each write is
one autocommitted statement in WAL mode. At most ``capacity`` conversations and ``max_bytes`` of
items are kept: the conversation written longest ago goes first. A deleted or evicted conversation,
or a deleted item, leaves nothing on disk (``secure_delete``, then a WAL checkpoint), as a deleted
response does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from claif_cod.openai_compat.conversations_store import ConversationRecord, StoredItem

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


class SqliteConversationStore:
    """A :class:`~claif_cod.openai_compat.conversations_store.ConversationStore` on the response
    registry's connection; one thread only."""

    def __init__(
        self, conn: sqlite3.Connection, *, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self._conn = conn
        self._capacity = capacity
        self._max_bytes = max_bytes
        self.bytes = int(conn.execute("SELECT COALESCE(SUM(length(body)), 0) FROM conversation_items").fetchone()[0])
        """The bodies of every item, kept here so that a write does not sum the table."""
        self.count = int(conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    def create(self, record: ConversationRecord, items: Sequence[StoredItem]) -> None:
        self._conn.execute(
            "INSERT INTO conversations (conversation_id, created_at, metadata, touched) VALUES (?, ?, ?, ?)",
            (record.conversation_id, record.created_at, record.metadata, self._next_touch()),
        )
        self.count += 1
        self._insert(record.conversation_id, items)

    def get(self, conversation_id: str) -> ConversationRecord | None:
        row = self._conn.execute(
            "SELECT created_at, metadata FROM conversations WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        return None if row is None else ConversationRecord(conversation_id, int(row[0]), bytes(row[1]))

    def set_metadata(self, conversation_id: str, metadata: bytes) -> None:
        self._conn.execute(
            "UPDATE conversations SET metadata = ?, touched = ? WHERE conversation_id = ?",
            (metadata, self._next_touch(), conversation_id),
        )

    def delete(self, conversation_id: str) -> None:
        self._remove(conversation_id)
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def append(self, conversation_id: str, items: Sequence[StoredItem]) -> None:
        self._conn.execute(
            "UPDATE conversations SET touched = ? WHERE conversation_id = ?", (self._next_touch(), conversation_id)
        )
        self._insert(conversation_id, items)

    def items(self, conversation_id: str) -> list[StoredItem]:
        rows = self._conn.execute(
            "SELECT item_id, body FROM conversation_items WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        ).fetchall()
        return [StoredItem(str(item_id), bytes(body)) for item_id, body in rows]

    def delete_item(self, conversation_id: str, item_id: str) -> bool:
        row = self._conn.execute(
            "SELECT seq, length(body) FROM conversation_items WHERE conversation_id = ? AND item_id = ?"
            " ORDER BY seq LIMIT 1",
            (conversation_id, item_id),
        ).fetchone()
        if row is None:
            return False
        self._conn.execute("DELETE FROM conversation_items WHERE seq = ?", (row[0],))
        self.bytes -= int(row[1])
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True

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
        What they held leaves the disk as a deleted conversation's does."""
        evicted = False
        while self.count > self._capacity or self.bytes > self._max_bytes:
            oldest = self._conn.execute(
                "SELECT conversation_id FROM conversations WHERE conversation_id != ? ORDER BY touched LIMIT 1",
                (keep,),
            ).fetchone()
            if oldest is None:
                break
            self._remove(str(oldest[0]))
            evicted = True
        if evicted:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
