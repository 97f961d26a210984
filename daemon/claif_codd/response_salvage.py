"""Rows rescued from a ``responses.db`` found corrupt, before it is replaced by a fresh one.

A damaged page that the open itself does not read (a table's, an index's) used to pass unnoticed: the
daemon started, then every ``responses.retrieve`` crashed with "database disk image is malformed"
and every new response failed as if the disk were full. ``PRAGMA quick_check`` now finds it at open;
as for ``sessions.db`` (:mod:`claif_codd.registry_salvage`), each table is scanned from both ends
of its key through the connection that found the damage (SQLite reads a table up to the first bad
page a scan meets, so a bad page loses only the rows on it), and what was read is put into the fresh
file. A response whose input items were lost keeps its place (its output, its thread: what
``retrieve`` and ``previous_response_id`` need) with an empty input; an input whose response was
lost, or an item whose conversation was, is left out.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from claif_codd.registry_salvage import Row, read_rows

_TABLES = {
    "responses": ("seq", "seq, response_id, thread_id, turn_id, working_dir, instructions, created_at, stored, body"),
    "response_inputs": ("seq", "seq, input"),
    "conversations": ("rowid", "conversation_id, created_at, metadata, touched"),
    "conversation_items": ("seq", "seq, conversation_id, item_id, body"),
}
"""Each table of schema 4: the key its scans go by, and its columns."""
_RESCUED_SCHEMA = 4
_HALVES = (
    "INSERT INTO response_inputs (seq, input)"
    " SELECT seq, X'5B5D' FROM responses WHERE seq NOT IN (SELECT seq FROM response_inputs)",
    "DELETE FROM response_inputs WHERE seq NOT IN (SELECT seq FROM responses)",
    "DELETE FROM conversation_items WHERE conversation_id NOT IN (SELECT conversation_id FROM conversations)",
)
"""Run once the rows are in: a response without its input gets ``[]``; the other halves go."""


@dataclass(frozen=True)
class Rescued:
    tables: dict[str, list[Row]]

    def counts(self, into: sqlite3.Connection) -> tuple[int, int, int]:
        """How many responses (and of them without their input) and conversations ``into`` holds once
        :func:`keep` put them there."""
        responses = into.execute("SELECT count(*) FROM responses").fetchone()[0]
        inputs = {row[0] for row in self.tables.get("response_inputs", [])}
        no_input = sum(1 for row in self.tables.get("responses", []) if row[0] not in inputs)
        conversations = into.execute("SELECT count(*) FROM conversations").fetchone()[0]
        return int(responses), no_input, int(conversations)


def rescue(source: sqlite3.Connection) -> Rescued:
    """The rows of a damaged ``responses.db`` that can still be read through ``source`` (none from
    a schema older than the current one, which it would take a migration to read)."""
    version = read_rows(source, "PRAGMA user_version")
    if not version or version[0][0] != _RESCUED_SCHEMA:
        return Rescued({})
    tables: dict[str, list[Row]] = {}
    for table, (key, columns) in _TABLES.items():
        rows: dict[object, Row] = {}
        for order in ("", " DESC"):
            for row in read_rows(source, f"SELECT {key}, {columns} FROM {table} ORDER BY {key}{order}"):
                rows.setdefault(row[0], row[1:])
        tables[table] = list(rows.values())
    return Rescued(tables)


def keep(rescued: Rescued, into: sqlite3.Connection) -> None:
    """Put the rescued rows into the fresh file ``into`` (its schema made), in one transaction."""
    into.execute("BEGIN IMMEDIATE")
    try:
        for table, rows in rescued.tables.items():
            columns = _TABLES[table][1]
            marks = ", ".join("?" * len(columns.split(",")))
            into.executemany(f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})", rows)
        for statement in _HALVES:
            into.execute(statement)
    except BaseException:
        into.execute("ROLLBACK")
        raise
    into.execute("COMMIT")
