"""``responses.db`` (the responses and the conversations on its connection) makes no ``-shm`` file, as
``sessions.db`` does not (``test_registry_no_shm.py``): a ``-shm`` mapping is what a truncated or frozen
file turns into a SIGBUS that kills the daemon. Every statement of every connection the registry opens
is traced, the directory looked at each time; each connection enters exclusive locking mode first."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
from test_registry_no_shm import assert_no_shm_ever, traced

from claif_cod.openai_compat.conversations_store import ConversationRecord, StoredItem
from claif_cod.openai_compat.responses_schema import Response
from claif_cod.openai_compat.responses_store import ResponseRecord
from claif_codd.conversation_registry import SqliteConversationStore
from claif_codd.response_registry import SqliteResponseStore


def record(n: int, status: str = "completed") -> ResponseRecord:
    body = Response(id=f"r{n}", created_at=1, model="m", status=status, output=[])  # type: ignore[arg-type]
    return ResponseRecord(f"r{n}", "th1", f"turn-{n}", "/w", None, 1.0, True, msgspec.json.encode(body) + b" " * 300)


def test_a_truncated_shm_file_cannot_sigbus_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    store = SqliteResponseStore(path)
    conversations = SqliteConversationStore(store.connection)
    store.put(record(0))
    conversations.create(ConversationRecord("c1", 1, b"{}"), [StoredItem("i0", b'{"id":"i0"}')])
    shm = path.with_name(path.name + "-shm")
    assert not shm.exists()  # WAL's index lives in the daemon's private memory
    shm.write_bytes(b"\xff" * 65536)  # what an unlucky cleanup or an attacker could leave there
    shm.write_bytes(b"")
    for n in range(1, 51):
        store.put(record(n))
        conversations.append("c1", [StoredItem(f"i{n}", b'{"id":"i%d"}' % n)])
    assert store.get("r50") == record(50) and store.tip("th1") == "r50"
    assert len(conversations.items("c1")) == 51
    store.close()


def crash_image(tmp_path: Path, checkpointed: int, in_wal: int) -> Path:
    """``responses.db`` as a killed daemon leaves it: the last writes committed to the WAL, not checkpointed."""
    live = tmp_path / "live" / "responses.db"
    live.parent.mkdir(mode=0o700)
    store = SqliteResponseStore(live)
    for n in range(checkpointed):
        store.put(record(n))
    store.close()
    store = SqliteResponseStore(live)
    conversations = SqliteConversationStore(store.connection)
    conversations.create(ConversationRecord("c1", 1, b"{}"), [StoredItem("i0", b'{"id":"i0"}')])
    for n in range(checkpointed, checkpointed + in_wal):
        store.put(record(n, status="in_progress" if n == checkpointed + in_wal - 1 else "completed"))
    image = tmp_path / "crash"
    image.mkdir(mode=0o700)
    for suffix in ("", "-wal"):
        shutil.copy(f"{live}{suffix}", image / f"responses.db{suffix}")
    store.close()
    assert (image / "responses.db-wal").stat().st_size > 0
    return image / "responses.db"


def test_reopening_after_a_crash_never_makes_a_shm_file(tmp_path: Path) -> None:
    path = crash_image(tmp_path, checkpointed=10, in_wal=10)
    with traced(path.parent) as seen:
        store = SqliteResponseStore(path)  # replays the WAL, fails the unfinished response (a write)
        conversations = SqliteConversationStore(store.connection)
        assert [store.get(f"r{n}") is not None for n in range(20)] == [True] * 20
        assert msgspec.json.decode(store.get("r19").body, type=Response).status == "failed"  # type: ignore[union-attr]
        assert conversations.items("c1") == [StoredItem("i0", b'{"id":"i0"}')]
        conversations.delete("c1")  # a checkpoint too
        store.close()
    assert_no_shm_ever(seen)


def test_an_unreadable_file_moved_aside_never_makes_a_shm_file(tmp_path: Path) -> None:
    path = tmp_path / "responses.db"
    path.write_bytes(b"not a database at all" * 100)
    with traced(tmp_path) as seen:
        store = SqliteResponseStore(path)
        store.put(record(1))
        store.close()
    assert_no_shm_ever(seen)
