"""Rows rescued from a registry found corrupt, before it is replaced by a fresh one.

SQLite reads a damaged file up to the first bad page a scan meets, so each table is scanned from both
ends of its key (and sessions also through their ``last_used`` index): a bad page then loses only the
rows on it. The rows are read through the connection that found the damage (exclusive, so no ``-shm``
file is ever made for it) and, once that connection is closed, put into the fresh registry; the log
says how much was kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from claif_codd import registry_schema as sql

Row = tuple[object, ...]

_V1_COLUMNS = "session_id, thread_id, working_dir, model, turns, last_used, '' AS codex_home"
_V2_COLUMNS = "session_id, thread_id, working_dir, model, turns, last_used, codex_home"
_SESSIONS_V1 = f"SELECT {_V1_COLUMNS}, NULL AS instructions, NULL AS last_turn FROM sessions"
_SESSIONS_V2 = f"SELECT {_V2_COLUMNS}, NULL AS instructions, NULL AS last_turn FROM sessions"
_SESSIONS_V3 = f"SELECT {_V2_COLUMNS}, instructions, NULL AS last_turn FROM sessions"
_SESSIONS_V4 = f"SELECT {sql.COLUMNS} FROM sessions"
_MESSAGES = "SELECT session_id, codex_home, seq, role, text FROM session_messages"


@dataclass(frozen=True)
class Rescued:
    sessions: list[Row]
    messages: list[Row]


def rescue(source: sqlite3.Connection) -> Rescued:
    """The sessions and messages of a damaged registry that can still be read through ``source``."""
    version = read_rows(source, "PRAGMA user_version")
    schema = int(str(version[0][0])) if version else 0
    sessions: list[Row] = []
    messages: list[Row] = []
    if schema >= 1:
        select = (_SESSIONS_V1, _SESSIONS_V2, _SESSIONS_V3, _SESSIONS_V4)[min(schema, 4) - 1]
        scans = [
            f"{select} ORDER BY session_id, codex_home",
            f"{select} ORDER BY session_id DESC, codex_home DESC",
            f"{select} INDEXED BY sessions_last_used ORDER BY last_used",
        ]
        sessions = _union(source, scans, lambda row: (row[0], row[6]))
    if schema >= 2:
        scans = [
            f"{_MESSAGES} ORDER BY session_id, codex_home, seq",
            f"{_MESSAGES} ORDER BY 1 DESC, 2 DESC, 3 DESC",
        ]
        messages = _union(source, scans, lambda row: row[:3])
    return Rescued(sessions, messages)


def keep(rescued: Rescued, into: sqlite3.Connection) -> None:
    into.execute("BEGIN IMMEDIATE")
    into.executemany(sql.SQL_PUT, rescued.sessions)
    into.executemany(sql.SQL_ADD_MESSAGE, rescued.messages)
    into.execute("COMMIT")


def _union(conn: sqlite3.Connection, scans: list[str], key: Callable[[Row], object]) -> list[Row]:
    rows: dict[object, Row] = {}
    for statement in scans:
        for row in read_rows(conn, statement):
            rows.setdefault(key(row), row)
    return list(rows.values())


def read_rows(conn: sqlite3.Connection, statement: str) -> list[Row]:
    """Every row ``statement`` yields before the damage stops it."""
    rows: list[Row] = []
    try:
        cursor = conn.execute(statement)
        while (row := cursor.fetchone()) is not None:
            rows.append(tuple(row))
    except sqlite3.DatabaseError:
        pass
    return rows
