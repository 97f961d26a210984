"""The session registry's schema: migrations (``PRAGMA user_version`` i → i + 1) and its statements.

v1: ``sessions``, one row per session name.
v2: a session lives in one Codex home, so ``sessions`` is keyed by (name, home) (rows from v1 get the
home ``''``: unknown, adopted by the first home that uses the name); ``session_messages`` keeps every
message of a session, to seed a new thread when Codex's rollout of the old one is gone.
v3: ``sessions.instructions``, the developer instructions a session started with, for that seeding too
(``NULL`` for sessions from before: seeded with the instructions of the request that continues them).
v4: ``sessions.last_turn``, the id of the thread's last recorded turn: a later one in its rollout was never
answered (the daemon was killed during it) and is dropped on resume (``NULL`` for sessions from before).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
"""Brings the schema from version ``i`` to ``i + 1``; runs inside a transaction. Must not commit."""


def _migrate_v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE sessions (
            session_id  TEXT PRIMARY KEY NOT NULL,
            thread_id   TEXT NOT NULL,
            working_dir TEXT NOT NULL,
            model       TEXT,
            turns       INTEGER NOT NULL,
            last_used   REAL NOT NULL
        ) WITHOUT ROWID
        """
    )
    conn.execute("CREATE INDEX sessions_last_used ON sessions (last_used DESC)")


def _migrate_v2(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE sessions_v2 (
            session_id  TEXT NOT NULL,
            codex_home  TEXT NOT NULL,
            thread_id   TEXT NOT NULL,
            working_dir TEXT NOT NULL,
            model       TEXT,
            turns       INTEGER NOT NULL,
            last_used   REAL NOT NULL,
            PRIMARY KEY (session_id, codex_home)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        "INSERT INTO sessions_v2 SELECT session_id, '', thread_id, working_dir, model, turns, last_used FROM sessions"
    )
    conn.execute("DROP TABLE sessions")
    conn.execute("ALTER TABLE sessions_v2 RENAME TO sessions")
    conn.execute("CREATE INDEX sessions_last_used ON sessions (last_used DESC)")
    conn.execute(
        """
        CREATE TABLE session_messages (
            session_id TEXT NOT NULL,
            codex_home TEXT NOT NULL,
            seq        INTEGER NOT NULL,
            role       TEXT NOT NULL,
            text       TEXT NOT NULL,
            PRIMARY KEY (session_id, codex_home, seq)
        ) WITHOUT ROWID
        """
    )


def _migrate_v3(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE sessions ADD COLUMN instructions TEXT")


def _migrate_v4(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE sessions ADD COLUMN last_turn TEXT")


MIGRATIONS: tuple[Migration, ...] = (_migrate_v1, _migrate_v2, _migrate_v3, _migrate_v4)
SCHEMA_VERSION = len(MIGRATIONS)

COLUMNS = "session_id, thread_id, working_dir, model, turns, last_used, codex_home, instructions, last_turn"
SQL_GET = f"SELECT {COLUMNS} FROM sessions WHERE session_id = ? AND codex_home = ?"
SQL_ALL = f"SELECT {COLUMNS} FROM sessions ORDER BY last_used DESC, session_id, codex_home"
SQL_PUT = f"""
    INSERT INTO sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (session_id, codex_home) DO UPDATE SET
        thread_id = excluded.thread_id,
        working_dir = excluded.working_dir,
        model = excluded.model,
        turns = excluded.turns,
        last_used = excluded.last_used,
        instructions = excluded.instructions,
        last_turn = excluded.last_turn
"""
SQL_DELETE = "DELETE FROM sessions WHERE session_id = ?"
SQL_DELETE_MESSAGES = "DELETE FROM session_messages WHERE session_id = ?"
SQL_NEXT_SEQ = "SELECT COALESCE(MAX(seq), 0) + 1 FROM session_messages WHERE session_id = ? AND codex_home = ?"
SQL_ADD_MESSAGE = "INSERT INTO session_messages (session_id, codex_home, seq, role, text) VALUES (?, ?, ?, ?, ?)"
SQL_HISTORY = "SELECT role, text FROM session_messages WHERE session_id = ? AND codex_home = ? ORDER BY seq"
