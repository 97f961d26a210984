"""The in-process Responses store: its count and byte bounds (the daemon's SQLite one is in tests/daemon)."""

from __future__ import annotations

from claif_cod.openai_compat.responses_store import MemoryResponseStore, ResponseRecord, size


def record(response_id: str, input_bytes: int = 2, thread_id: str = "th") -> ResponseRecord:
    return ResponseRecord(
        response_id, thread_id, "t", "/w", None, 1.0, True, b"{}", b"[" + b" " * (input_bytes - 2) + b"]"
    )


def test_the_oldest_go_once_bodies_and_inputs_pass_max_bytes() -> None:
    store = MemoryResponseStore(max_bytes=3 * 1002)
    for n in range(5):
        store.put(record(f"r{n}", 1000))
    assert [store.get(f"r{n}") is not None for n in range(5)] == [False, False, True, True, True]
    assert store.bytes == 3 * 1002
    assert store.tip("th") == "r4"
    store.put(record("r2", 2))  # an update frees its old input
    assert store.bytes == 2 * 1002 + 4
    store.forget("r3")
    assert store.bytes == 1002 + 4 + size(store.get("r3"))  # type: ignore[arg-type]
    store.delete("r4")
    store.put(record("huge", 10_000, thread_id="other"))  # the newest stays, whatever its size
    assert [store.get(r) is not None for r in ("r2", "r3", "huge")] == [False, False, True]
    assert store.bytes == 10_002 and store.tip("th") is None and store.tip("other") == "huge"


def test_the_count_bound_still_holds() -> None:
    store = MemoryResponseStore(capacity=2)
    for n in range(4):
        store.put(record(f"r{n}"))
    assert [store.get(f"r{n}") is not None for n in range(4)] == [False, False, True, True]
    assert store.bytes == 2 * size(record("r"))


def test_deleted_says_whether_a_recorded_response_is_not_stored() -> None:
    store = MemoryResponseStore()
    store.put(record("kept"))
    store.put(record("gone"))
    store.forget("gone")
    assert [store.deleted(r) for r in ("kept", "gone", "unknown")] == [False, True, False]
