"""SqliteSessionStore: the daemon's crash-safe session registry."""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

import claif_codd.registry as registry
from claif_cod.engine.conversations import Message
from claif_cod.engine.sessions import SessionRecord, SessionStore
from claif_codd.registry import MIGRATIONS, SCHEMA_VERSION, RegistrySchemaError, SqliteSessionStore

WORKER = Path(__file__).with_name("registry_crash_worker.py")
LOGGER = "claif_codd.registry"


def rec(session_id: str, *, turns: int = 1, last_used: float = 1000.0, model: str | None = "gpt-test") -> SessionRecord:
    return SessionRecord(
        session_id=session_id,
        thread_id=f"thread-{session_id}-{turns}",
        working_dir=f"/work/{session_id}",
        model=model,
        turns=turns,
        last_used=last_used,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def corrupt_copies(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if ".corrupt-" in p.name)


def corrupt_databases(directory: Path) -> list[Path]:
    """The moved-aside database files themselves, without their -wal/-shm companions."""
    return [p for p in corrupt_copies(directory) if not p.name.endswith(("-wal", "-shm", "-journal"))]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sessions.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteSessionStore]:
    s = SqliteSessionStore(db_path)
    yield s
    s.close()


# -- the SessionStore contract --------------------------------------------------------------


def test_satisfies_protocol(store: SqliteSessionStore) -> None:
    as_protocol: SessionStore = store
    assert as_protocol.all() == []


def test_round_trip(store: SqliteSessionStore) -> None:
    records = [rec("a", model=None), rec("b", turns=7, last_used=1712345678.123456), rec("ünï/cødé ✓")]
    for r in records:
        store.put(r)
    for r in records:
        assert store.get(r.session_id) == r
    got = store.get("b")
    assert got is not None
    assert isinstance(got.turns, int)
    assert isinstance(got.last_used, float)
    assert store.get("missing") is None


def test_update_replaces_whole_record(store: SqliteSessionStore) -> None:
    store.put(rec("a", turns=1, last_used=10.0))
    updated = SessionRecord("a", "thread-other", "/elsewhere", None, 2, 20.0)
    store.put(updated)
    assert store.get("a") == updated
    assert store.all() == [updated]


def test_delete(store: SqliteSessionStore) -> None:
    store.put(rec("a"))
    store.put(rec("b"))
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.delete("never") is False
    assert store.get("a") is None
    assert [r.session_id for r in store.all()] == ["b"]


def test_all_ordered_by_last_used_desc(store: SqliteSessionStore) -> None:
    for sid, used in [("old", 1.0), ("newest", 50.0), ("mid", 10.0), ("tie-b", 5.0), ("tie-a", 5.0)]:
        store.put(rec(sid, last_used=used))
    assert [r.session_id for r in store.all()] == ["newest", "mid", "tie-a", "tie-b", "old"]
    store.put(rec("old", turns=2, last_used=99.0))  # touching a session moves it to the front
    assert store.all()[0].session_id == "old"


def test_only_the_daemon_can_open_the_registry(store: SqliteSessionStore, db_path: Path) -> None:
    """Exclusive locking (no shared -shm mapping to SIGBUS the daemon): a second connection is refused.
    That each put is committed before it returns is shown by the kill -9 loop below."""
    store.put(rec("a"))
    other = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.1)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("SELECT session_id FROM sessions").fetchall()
    finally:
        other.close()


def test_reopen_persists(db_path: Path) -> None:
    with SqliteSessionStore(db_path) as first:
        first.put(rec("a", last_used=1.0))
        first.put(rec("b", last_used=2.0))
        first.put(rec("c", last_used=3.0))
        first.delete("b")
        first.put(rec("a", turns=5, last_used=4.0))
    assert first.closed
    with SqliteSessionStore(db_path) as second:
        assert second.all() == [rec("a", turns=5, last_used=4.0), rec("c", last_used=3.0)]
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        raw.close()


def test_reopen_without_close_persists(db_path: Path) -> None:
    """Dropping the store without close() (as a crash would) loses nothing committed."""
    crash = (
        "import os, sys; from claif_codd.registry import SqliteSessionStore; from claif_cod.engine.sessions import "
        "SessionRecord; s = SqliteSessionStore(__import__('pathlib').Path(sys.argv[1])); "
        "s.put(SessionRecord('a', 'thread-a-1', '/work/a', 'gpt-test', 1, 1000.0)); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", crash, str(db_path)], check=True, timeout=60)
    second = SqliteSessionStore(db_path)
    try:
        assert second.get("a") == rec("a")
    finally:
        second.close()


def test_close_is_idempotent_and_final(db_path: Path) -> None:
    s = SqliteSessionStore(db_path)
    s.close()
    s.close()
    assert s.closed
    with pytest.raises(sqlite3.ProgrammingError):
        s.get("a")
    with pytest.raises(sqlite3.ProgrammingError):
        s.put(rec("a"))


def test_single_thread_only(store: SqliteSessionStore) -> None:
    errors: list[BaseException] = []

    def use() -> None:
        try:
            store.get("a")
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert len(errors) == 1
    assert isinstance(errors[0], sqlite3.ProgrammingError)


def test_synchronous_setting(tmp_path: Path) -> None:
    with (
        SqliteSessionStore(tmp_path / "n.db") as normal,
        SqliteSessionStore(tmp_path / "f.db", synchronous="FULL") as full,
    ):
        assert normal._db().execute("PRAGMA synchronous").fetchone() == (1,)
        assert full._db().execute("PRAGMA synchronous").fetchone() == (2,)
    with pytest.raises(ValueError, match="synchronous"):
        SqliteSessionStore(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]


# -- permissions ----------------------------------------------------------------------------


def test_permissions_even_with_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "sessions.db"
    old_umask = os.umask(0)
    try:
        s = SqliteSessionStore(path)
    finally:
        os.umask(old_umask)
    try:
        s.put(rec("a"))  # the WAL file exists now (no -shm: exclusive locking keeps the index in memory)
        assert mode(tmp_path / "a") == 0o700
        assert mode(tmp_path / "a" / "b") == 0o700
        assert mode(path) == 0o600
        assert mode(path.with_name(path.name + "-wal")) == 0o600
        assert not path.with_name(path.name + "-shm").exists()
    finally:
        s.close()


def test_file_is_private_before_sqlite_opens_it(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No window in which SQLite has created the file with default (umask) permissions."""
    real_connect = sqlite3.connect
    seen: list[int] = []

    def checking_connect(database: str | Path, *args: object, **kwargs: object) -> sqlite3.Connection:
        path = str(database)
        if kwargs.get("uri"):
            path = urllib.parse.unquote(path.removeprefix("file:").partition("?")[0])
        seen.append(mode(Path(path)))
        return real_connect(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(registry.sqlite3, "connect", checking_connect)
    SqliteSessionStore(db_path).close()
    assert seen
    assert set(seen) == {0o600}


def test_awkward_path(tmp_path: Path) -> None:
    path = tmp_path / "we?ird #dir% 20" / "sessions?.db"
    with SqliteSessionStore(path) as s:
        s.put(rec("a"))
    with SqliteSessionStore(path) as s:
        assert s.get("a") == rec("a")
    assert corrupt_copies(path.parent) == []


def test_existing_loose_file_is_tightened_existing_dir_left_alone(tmp_path: Path) -> None:
    tmp_path.joinpath("shared").mkdir(mode=0o755)
    os.chmod(tmp_path / "shared", 0o755)
    path = tmp_path / "shared" / "sessions.db"
    path.touch()
    os.chmod(path, 0o644)
    SqliteSessionStore(path).close()
    assert mode(path) == 0o600
    assert mode(tmp_path / "shared") == 0o755


# -- integrity, corruption, schema ----------------------------------------------------------


def test_not_a_database_is_moved_aside(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db_path.parent.mkdir(mode=0o700)
    garbage = b"this is not an sqlite database\n" * 300
    db_path.write_bytes(garbage)
    db_path.with_name(db_path.name + "-wal").write_bytes(b"stale wal")
    with caplog.at_level(logging.WARNING, logger=LOGGER), SqliteSessionStore(db_path) as s:
        assert s.all() == []
        s.put(rec("fresh"))
        assert s.get("fresh") == rec("fresh")
    (aside,) = corrupt_databases(db_path.parent)
    assert aside.name.startswith("sessions.db.corrupt-")
    assert aside.read_bytes() == garbage
    assert aside.with_name(aside.name + "-wal").read_bytes() == b"stale wal"  # kept with it, untouched
    assert {p.name for p in db_path.parent.iterdir()} <= {
        *(f"sessions.db{suffix}" for suffix in ("", "-wal", "-shm")),
        *(f"{aside.name}{suffix}" for suffix in ("", "-wal", "-shm")),
    }
    assert mode(db_path) == 0o600
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "moved it aside" in warnings[0].getMessage()
    assert str(aside) in warnings[0].getMessage()


def test_corrupt_btree_is_moved_aside(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with SqliteSessionStore(db_path) as s:
        for i in range(300):
            s.put(rec(f"session-{i:04d}", last_used=float(i)))
    assert not db_path.with_name(db_path.name + "-wal").exists()  # last close checkpointed
    raw = bytearray(db_path.read_bytes())
    page_size = int.from_bytes(raw[16:18], "big")
    assert len(raw) >= 4 * page_size
    raw[page_size : 3 * page_size] = bytes([0xA5]) * (2 * page_size)  # trash pages 2 and 3
    db_path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger=LOGGER), SqliteSessionStore(db_path) as s:
        kept = s.all()  # what the damage left readable is salvaged (test_registry_faults.py)
    assert all(r == rec(r.session_id, last_used=r.last_used) for r in kept)
    (aside,) = corrupt_databases(db_path.parent)
    assert aside.read_bytes() == bytes(raw)  # moved as found: no checkpoint or rewrite on the way out
    assert any(r.name == LOGGER and r.levelno == logging.WARNING for r in caplog.records)


def test_two_corruptions_in_the_same_second_keep_both_copies(db_path: Path) -> None:
    for n in range(2):
        db_path.parent.mkdir(mode=0o700, exist_ok=True)
        db_path.write_bytes(f"garbage {n}".encode() * 100)
        SqliteSessionStore(db_path).close()
    assert len(corrupt_databases(db_path.parent)) == 2


def test_locked_database_is_not_mistaken_for_corruption(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteSessionStore(db_path) as s:
        s.put(rec("keep"))
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM sessions WHERE session_id = 'nothing'")
        monkeypatch.setattr(registry, "_BUSY_TIMEOUT_S", 0.05)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            SqliteSessionStore(db_path)
    finally:
        holder.close()
    assert corrupt_copies(db_path.parent) == []
    with SqliteSessionStore(db_path) as s:
        assert s.get("keep") == rec("keep")


def test_newer_schema_is_refused_not_discarded(db_path: Path) -> None:
    with SqliteSessionStore(db_path) as s:
        s.put(rec("a"))
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(RegistrySchemaError, match="written by a newer claif-codd"):
        SqliteSessionStore(db_path)
    assert corrupt_copies(db_path.parent) == []
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("SELECT session_id FROM sessions").fetchall() == [("a",)]
    finally:
        raw.close()


def test_migration_hook(db_path: Path) -> None:
    with SqliteSessionStore(db_path) as s:
        s.put(rec("a"))

    def add_label(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE sessions ADD COLUMN label TEXT")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE sessions ADD COLUMN doomed TEXT")
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        SqliteSessionStore(db_path, migrations=(*MIGRATIONS, broken))
    with SqliteSessionStore(db_path, migrations=(*MIGRATIONS, add_label)) as s:
        assert s.get("a") == rec("a")
        s.put(rec("b"))
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
        columns = [row[1] for row in raw.execute("PRAGMA table_info(sessions)")]
        assert "label" in columns
        assert "doomed" not in columns  # the failed migration rolled back completely
    finally:
        raw.close()


# -- kill -9 --------------------------------------------------------------------------------

SEED = 0xC0DD
ITERATIONS = 50


def _read_lines(proc: subprocess.Popen[bytes], buf: bytearray, want_acks: int, deadline: float) -> None:
    """Read the worker's stdout into buf until it holds want_acks acknowledgements (or EOF)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while buf.count(b"A\n") < want_acks:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("worker produced no acknowledgements in time")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return  # EOF: the worker died by itself; the caller reports it
            buf += chunk


def _expected_states(before: dict[str, int], output: bytes) -> list[dict[str, int]]:
    """States the store may be in: all acknowledged ops applied, plus maybe the one in flight."""
    state = dict(before)
    in_flight: tuple[str, str, int] | None = None
    for line in output.decode().splitlines(keepends=True):
        assert line.endswith("\n"), f"torn line from worker: {line!r}"
        if line == "A\n":
            assert in_flight is not None
            op, sid, turns = in_flight
            if op == "put":
                state[sid] = turns
            else:
                del state[sid]
            in_flight = None
        else:
            _, op, sid, turns_s = line.split()
            assert in_flight is None
            in_flight = (op, sid, int(turns_s))
    if in_flight is None:
        return [state]
    op, sid, turns = in_flight
    alternative = dict(state)
    if op == "put":
        alternative[sid] = turns
    else:
        alternative.pop(sid, None)
    return [state, alternative]


def _kill_once(
    rng: random.Random, db_path: Path, model: dict[str, int], iteration: int
) -> tuple[dict[str, int], int, int]:
    """One spawn / kill -9 / verify round; returns the new model, acks seen, 1 if the in-flight op stuck."""
    early_kill = rng.random() < 0.1
    want_acks = 0 if early_kill else rng.randint(1, 40)
    delay = rng.uniform(0.0, 0.06) if early_kill else rng.uniform(0.0, 0.003)
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(db_path), str(rng.getrandbits(32)), f"it{iteration}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    buf = bytearray()
    try:
        _read_lines(proc, buf, want_acks, time.monotonic() + 10)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=10)  # reaps the child
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"worker exited {proc.returncode}: {err.decode()}"
    output = bytes(buf) + rest
    candidates = _expected_states(model, output)

    with SqliteSessionStore(db_path) as s:
        assert corrupt_copies(db_path.parent) == [], "registry was found corrupt"
        assert s._db().execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        records = s.all()
    actual = {r.session_id: r.turns for r in records}
    if actual not in candidates:
        missing = sorted(candidates[0].keys() - actual.keys())
        unexpected = sorted(actual.keys() - candidates[-1].keys())
        changed = sorted(k for k in actual.keys() & candidates[0].keys() if actual[k] != candidates[0][k])
        raise AssertionError(
            f"acknowledged state lost: {len(missing)} missing {missing[:10]}, {len(unexpected)} unexpected "
            f"{unexpected[:10]}, {len(changed)} changed {changed[:10]}"
        )
    for r in records:
        assert r.thread_id == f"thread-{r.session_id}-{r.turns}"
        assert r.working_dir == f"/work/{r.session_id}"
    assert [r.last_used for r in records] == sorted((r.last_used for r in records), reverse=True)
    committed = int(len(candidates) == 2 and actual == candidates[1] != candidates[0])
    return actual, output.count(b"A\n"), committed


def test_no_acknowledged_session_lost_on_kill_9(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SIGKILL a writer at random moments, 50 times over one file; nothing acknowledged may be lost.

    The file is shared by all iterations, so each open also recovers a WAL left by a killed
    writer, and the model of what must be there carries across kills.
    """
    rng = random.Random(SEED)
    db_path = tmp_path / "state" / "sessions.db"
    model: dict[str, int] = {}
    total_acks = 0
    in_flight_committed = 0
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for iteration in range(ITERATIONS):
        context = f"seed={SEED:#x} iteration={iteration}"
        try:
            model, acks, committed = _kill_once(rng, db_path, model, iteration)
        except AssertionError as exc:
            raise AssertionError(f"{context}: {exc}") from exc
        total_acks += acks
        in_flight_committed += committed

    assert not [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert total_acks > ITERATIONS, f"seed={SEED:#x}: too few acknowledged operations to mean anything"
    print(
        f"kill -9 loop: seed={SEED:#x} iterations={ITERATIONS} acknowledged_ops={total_acks} "
        f"in_flight_ops_found_committed={in_flight_committed} final_sessions={len(model)}"
    )


def test_a_deleted_sessions_messages_leave_no_trace_in_the_file(db_path: Path, secure_delete_off: None) -> None:
    """As with an SQLite built with secure_delete off (upstream's default; Debian's build turns it
    on): the registry zeroes what it frees itself."""
    store = SqliteSessionStore(db_path)
    store.put(rec("s1"), [Message("user", "SESSION-SECRET-MARK " * 50)])
    assert store.delete("s1")
    for _ in range(2):  # while the daemon runs (the WAL kept it until a checkpoint), and once closed
        on_disk = b"".join(path.read_bytes() for path in db_path.parent.glob("sessions.db*"))
        assert b"SESSION-SECRET-MARK" not in on_disk
        store.close()
