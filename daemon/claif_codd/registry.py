"""The daemon's crash-safe session registry: named session → Codex thread bindings in SQLite.

:class:`SqliteSessionStore` implements :class:`claif_cod.engine.sessions.SessionStore` on one
SQLite file, so a named conversation survives the daemon being restarted, upgraded or killed.

Durability
----------
Every :meth:`~SqliteSessionStore.put` and :meth:`~SqliteSessionStore.delete` is a single
statement run in autocommit mode, i.e. its own committed transaction: when the call returns,
the change is committed, and that is what "acknowledged" means.

The file is in WAL journal mode. What survives depends on *what* crashed:

* **The daemon process dies** (``kill -9``, OOM killer, segfault, Python exception).
  A commit in WAL mode is complete once SQLite has ``write()``-n the frames and the commit
  marker into the ``-wal`` file. Those bytes are then owned by the kernel's page cache, not by
  the process, so they outlive it; the next open replays the WAL (frames are checksummed, a torn
  tail from a half-finished transaction is ignored). So a process crash loses **no** committed
  transaction whatever ``PRAGMA synchronous`` says; SQLite documents that transactions are
  durable across application crashes regardless of the synchronous setting or journal mode.
  The ``kill -9`` loop in ``tests/daemon/test_registry.py`` checks exactly this.
* **The machine dies** (power loss, kernel panic, VM reset). Only data the disk has been told
  to persist (``fsync``) survives. With ``synchronous=NORMAL`` the WAL is fsynced only at
  checkpoints, so the most recent commits may roll back; the file is never corrupted (WAL mode
  stays consistent under NORMAL). With ``synchronous=FULL`` SQLite also fsyncs the WAL on every
  commit, which makes each acknowledged put survive power loss on storage that honours fsync.

The choice, made deliberately: **NORMAL by default**. The engine calls the store synchronously
from the daemon's event loop on every session turn, so a put must stay sub-millisecond; an fsync
per turn costs from a fraction of a millisecond to tens of milliseconds (ext4 fsync stalls behind
unrelated writeback), stalling every client of the daemon. And what a record binds to, Codex's own
thread files, lives on the same machine and is not made more durable by us fsyncing the binding:
after a power loss the newest turns may be gone from both. The guarantee we need, "no session
acknowledged by a daemon that then crashed or was killed is lost", holds under NORMAL. Pass
``synchronous="FULL"`` to also survive power loss at the price of an fsync per put.

Files and permissions
---------------------
Missing parent directories are created with mode 0700 (``os.mkdir(..., 0o700)``, never wider
than 0700 whatever the umask, then set to exactly 0700). Existing parents are left alone; the state
directory itself must be the user's own and closed to group and others (``check_usable`` refuses
it otherwise, naming the ``chmod`` that fixes it, as for the socket's directory).
The database file is created by ``os.open(..., O_CREAT, 0o600)`` before SQLite touches it, so it
is never wider than 0600 at any instant, then set to exactly 0600; SQLite gives the ``-wal`` file
it creates the database file's mode. No process-wide umask is changed (the umask
is shared by every thread of the daemon).

Locking
-------
Only the daemon opens the registry, in ``locking_mode=EXCLUSIVE``: WAL's index then lives in the
daemon's own memory, not in a shared ``-shm`` mapping (a truncated or frozen ``-shm`` file would
otherwise kill the daemon with SIGBUS). Another process opening the file while the daemon runs gets
"database is locked".

Integrity
---------
On open, ``PRAGMA quick_check`` runs on the daemon's own connection, already exclusive (so not even
the check maps a ``-shm`` file). If the file is not a database or is corrupt, it is renamed
to ``<name>.corrupt-<UTC timestamp>`` (its ``-wal``/``-shm``/``-journal`` files follow as
``<name>.corrupt-<timestamp>-wal`` etc., so the copy can still be opened for forensics, and a stale
WAL can never be replayed into the fresh file; closing the checking connection afterwards folds
a WAL it had read into the moved copy, which reads the same), a warning is logged on
``claif_codd.registry``,
and the sessions and messages that can still be read from it are copied into a fresh registry
(the warning says how many were kept; see :mod:`claif_codd.registry_salvage`).
Errors that are not corruption (locked, permission denied, I/O)
propagate and never cause the file to be moved.

Schema
------
The schema version is ``PRAGMA user_version``. ``migrations[i]`` takes a version-``i`` database
to version ``i + 1``; each step runs in one transaction together with the version bump, so a crash
mid-migration leaves the previous version intact. A file from a newer daemon (version above
``len(migrations)``) is refused with :class:`RegistrySchemaError`, never downgraded or discarded.

Threads
-------
One connection, created by and used only from the daemon's event-loop thread (sqlite3's default
``check_same_thread=True`` enforces it: a call from another thread raises
``sqlite3.ProgrammingError``). Construct the store on the loop thread. The class does no locking.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from claif_cod._private_dirs import make_private_dirs
from claif_cod.engine.conversations import Message
from claif_cod.engine.errors import SessionStoreFailed
from claif_cod.engine.sessions import SessionRecord
from claif_codd import registry_schema as sql
from claif_codd.registry_salvage import keep, rescue
from claif_codd.registry_schema import MIGRATIONS, SCHEMA_VERSION, Migration

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "RegistrySchemaError",
    "RegistryUnusable",
    "SqliteSessionStore",
    "check_usable",
]

logger = logging.getLogger("claif_codd.registry")


_DIR_MODE = 0o700
_FILE_MODE = 0o600
_SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_BUSY_TIMEOUT_S = 2.0


class RegistryUnusable(RuntimeError):
    """The registry's directory or file cannot be used; the message names the path and the fix."""


ANOTHER_STATE_DIR = "choose another with $CLAIF_COD_STATE_DIR (or serve's --state-dir)"
"""The way to another state directory that every command takes (``start`` has no ``--state-dir``)."""


def check_usable(path: Path, what: str = "session registry") -> None:
    """Fail fast, before a daemon binds its socket, when ``path`` cannot serve as ``what``."""
    directory = path.parent
    try:
        make_private_dirs(directory)
    except OSError as exc:
        raise RegistryUnusable(
            f"state directory {directory} cannot be created ({exc.strerror}); "
            "point --state-dir (or CLAIF_COD_STATE_DIR) at a writable directory"
        ) from None
    if not directory.is_dir():
        raise RegistryUnusable(f"state directory {directory} is not a directory; move it away or {ANOTHER_STATE_DIR}")
    st = directory.stat()  # a symlink's target: what the files land in
    owner, mode = st.st_uid, stat.S_IMODE(st.st_mode)
    if owner != os.getuid():
        raise RegistryUnusable(
            f"state directory {directory} is owned by uid {owner}, not by you (uid {os.getuid()}); "
            "point --state-dir at a directory of your own"
        )
    if mode & 0o077:
        raise RegistryUnusable(
            f"state directory {directory} has mode {mode:04o}; it keeps your conversations, so group and others "
            f"must have no access: chmod 700 {directory}"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RegistryUnusable(f"state directory {directory} is not writable; chmod u+rwx it or {ANOTHER_STATE_DIR}")
    if path.is_symlink() or (path.exists() and not path.is_file()):  # a link's target is not ours to open
        raise RegistryUnusable(f"{what} {path} is not a regular file; move it away or {ANOTHER_STATE_DIR}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise RegistryUnusable(f"{what} {path} is not readable and writable; chmod u+rw it")


class RegistrySchemaError(RuntimeError):
    """The registry file was written by a newer daemon whose schema this one does not know."""


class SqliteSessionStore:
    """A :class:`~claif_cod.engine.sessions.SessionStore` in one SQLite file (see module docs).

    ``put``/``delete`` return only once the change is committed; ``all()`` is ordered by
    ``last_used`` descending (ties by ``session_id``). Use from one thread only.
    """

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self._path = Path(path)
        self._synchronous = synchronous
        self._migrations = tuple(migrations)
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open()

    # -- SessionStore ---------------------------------------------------------------------

    def get(self, session_id: str, codex_home: str = "") -> SessionRecord | None:
        # fetchall() runs the statement to completion, ending the implicit read transaction
        # at once (a half-read cursor would pin a WAL snapshot and hold back checkpoints).
        rows = self._db().execute(sql.SQL_GET, (session_id, codex_home)).fetchall()
        return _record(rows[0]) if rows else None

    def put(self, record: SessionRecord, messages: Sequence[Message] = ()) -> None:
        """Write ``record`` and append ``messages`` to its history, in one transaction."""
        db = self._db()
        key = (record.session_id, record.codex_home)
        row = (
            *key[:1],
            record.thread_id,
            record.working_dir,
            record.model,
            record.turns,
            record.last_used,
            key[1],
            record.instructions,
            record.last_turn,
        )
        try:
            if not messages:
                db.execute(sql.SQL_PUT, row)
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(sql.SQL_PUT, row)
                (seq,) = db.execute(sql.SQL_NEXT_SEQ, key).fetchone()
                db.executemany(sql.SQL_ADD_MESSAGE, [(*key, seq + i, m.role, m.text) for i, m in enumerate(messages)])
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise SessionStoreFailed(str(self._path), str(exc)) from exc

    def history(self, session_id: str, codex_home: str = "") -> list[Message]:
        rows = self._db().execute(sql.SQL_HISTORY, (session_id, codex_home)).fetchall()
        return [Message("assistant" if role == "assistant" else "user", text) for role, text in rows]

    def delete(self, session_id: str) -> bool:
        """Forget the session in every Codex home, with its history."""
        db = self._db()
        try:
            deleted = db.execute(sql.SQL_DELETE, (session_id,)).rowcount > 0
            if db.execute(sql.SQL_DELETE_MESSAGES, (session_id,)).rowcount > 0:
                # The freed pages are zeroed; the checkpoint moves that into the file and empties the
                # WAL, which held the messages until the next checkpoint (a clean stop).
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise SessionStoreFailed(str(self._path), str(exc)) from exc
        return deleted

    def all(self) -> list[SessionRecord]:
        return [_record(row) for row in self._db().execute(sql.SQL_ALL).fetchall()]

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        """Close the connection (idempotent). Nothing is lost by not calling it; see module docs."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("PRAGMA optimize")
        except sqlite3.Error:  # pragma: no cover - best effort housekeeping only
            pass
        finally:
            conn.close()

    def __enter__(self) -> SqliteSessionStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<SqliteSessionStore {str(self._path)!r} {state} synchronous={self._synchronous}>"

    # -- opening --------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed session registry.")
        return self._conn

    def _open(self) -> sqlite3.Connection:
        make_private_dirs(self._path.parent)
        _ensure_private_file(self._path)
        conn = self._connect()
        try:
            problem = corruption(conn)
            if problem is None:
                self._known_version(conn)  # a newer daemon's file is refused before anything changes it
                self._configure(conn)
                self._migrate(conn)
                return conn
            rescued = rescue(conn)
            # Moved aside before the checking connection closes: its close checkpoints the WAL into the
            # moved copy (which reads the same), and finds no WAL under the old name to delete.
            aside = _move_aside(self._path)
        except BaseException:
            conn.close()
            raise
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        _ensure_private_file(self._path)
        conn = self._connect()
        try:
            self._configure(conn)
            self._migrate(conn)
            keep(rescued, conn)
        except BaseException:
            conn.close()
            raise
        logger.warning(
            "session registry %s is corrupt (%s); moved it aside to %s and kept the %d sessions "
            "and %d messages that could be read",
            self._path,
            problem,
            aside,
            len(rescued.sessions),
            len(rescued.messages),
        )
        return conn

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit, so each put/delete statement is its own transaction,
        # committed before execute() returns; migrations issue BEGIN/COMMIT explicitly.
        conn = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        # Only the daemon opens the registry: exclusive locking, set before the first read (the
        # integrity check's included), keeps WAL's index in private memory instead of a shared
        # ``-shm`` mapping, which anyone able to truncate that file could turn into a SIGBUS that
        # kills the daemon with every connection and turn.
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA secure_delete = ON")  # a closed session's messages leave no trace in freed pages
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            # e.g. a filesystem without shared-memory support; a rollback journal still keeps
            # commits durable across process crashes, so carry on rather than refuse to start.
            logger.warning("session registry %s: WAL unavailable, journal_mode is %s", self._path, mode)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        _tighten_sidecars(self._path)

    def _known_version(self, conn: sqlite3.Connection) -> int:
        target = len(self._migrations)
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        if current > target:
            raise RegistrySchemaError(
                f"written by a newer claif-codd (schema {current}; this one knows up to {target}): upgrade claif-codd"
            )
        return int(current)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        target = len(self._migrations)
        for version in range(self._known_version(conn), target):
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._migrations[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1:d}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            logger.info("session registry %s migrated to schema version %d", self._path, version + 1)


def _record(row: Any) -> SessionRecord:
    session_id, thread_id, working_dir, model, turns, last_used, codex_home, instructions, last_turn = row
    return SessionRecord(
        session_id=session_id,
        thread_id=thread_id,
        working_dir=working_dir,
        model=model,
        turns=int(turns),
        last_used=float(last_used),
        codex_home=codex_home,
        instructions=instructions,
        last_turn=last_turn,
    )


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """The file is not a database, or a damaged one (not a failure to write it: a full disk)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return (code & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    # Python 3.10: the sqlite3 module maps SQLITE_CORRUPT and SQLITE_NOTADB (and nothing that is
    # an ordinary operational failure) to the bare DatabaseError class.
    return type(exc) is sqlite3.DatabaseError


def corruption(conn: sqlite3.Connection) -> str | None:
    """What is wrong with the file, or None if it passes ``quick_check``."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            return str(exc)
        raise
    messages = [str(row[0]) for row in rows]
    if messages == ["ok"]:
        return None
    return "; ".join(messages[:5]) + (f" (+{len(messages) - 5} more)" if len(messages) > 5 else "")


def _ensure_private_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, _FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != _FILE_MODE:
            os.fchmod(fd, _FILE_MODE)
    finally:
        os.close(fd)


def _tighten_sidecars(path: Path) -> None:
    for suffix in _SIDECAR_SUFFIXES:
        sidecar = path.with_name(path.name + suffix)
        try:
            if stat.S_IMODE(sidecar.stat().st_mode) & ~_FILE_MODE:
                os.chmod(sidecar, _FILE_MODE)
        except FileNotFoundError:
            continue


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    # Sidecars first: once the main file is gone nothing may pair the old WAL with a new file.
    for suffix in _SIDECAR_SUFFIXES:
        sidecar = path.with_name(path.name + suffix)
        try:
            os.replace(sidecar, aside.with_name(aside.name + suffix))
        except FileNotFoundError:
            continue
    os.replace(path, aside)
    return aside
