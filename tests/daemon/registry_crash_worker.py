"""Child process for the registry's kill -9 test: mutate the store forever, announcing every step.

Usage: ``python registry_crash_worker.py DB_PATH SEED TAG``

For each operation it writes ``B <op> <session_id> <turns>`` (about to start) and, once the call
has returned, ``A`` (acknowledged), each line flushed with one ``write()`` so the parent sees
exactly which operations were acknowledged and which single one may have been in flight when it
was killed. ``op`` is ``put`` (insert or update) or ``del``.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import time
import types
from pathlib import Path


def _import_registry_fast() -> types.ModuleType:
    # ``claif_cod/__init__.py`` imports the whole client (openai, ...), ~0.4 s per process; the
    # test starts 50 of these. Register the package without running its __init__ so only the
    # real ``claif_cod.engine.sessions`` and ``claif_codd.registry`` modules get imported.
    spec = importlib.util.find_spec("claif_cod")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    package = types.ModuleType("claif_cod")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("claif_cod", package)
    import claif_codd.registry

    return claif_codd.registry


def record_fields(session_id: str, turns: int) -> tuple[str, str, str | None]:
    """thread_id, working_dir, model as a function of (session_id, turns), so the parent can check them."""
    return f"thread-{session_id}-{turns}", f"/work/{session_id}", None if turns % 3 == 0 else "gpt-test"


def main() -> None:
    db_path, seed, tag = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    registry = _import_registry_fast()
    from claif_cod.engine.sessions import SessionRecord

    rng = random.Random(seed)
    store = registry.SqliteSessionStore(db_path)
    # Checkpoint every few pages (default 1000) so kills also land inside checkpoints.
    store._conn.execute("PRAGMA wal_autocheckpoint = 8")
    live = {record.session_id: record.turns for record in store.all()}
    out = sys.stdout.buffer
    counter = 0
    while True:
        roll = rng.random()
        if live and roll < 0.15:
            session_id = rng.choice(sorted(live))
            out.write(f"B del {session_id} 0\n".encode())
            out.flush()
            store.delete(session_id)
            del live[session_id]
        else:
            if live and roll < 0.45:
                session_id = rng.choice(sorted(live))
                turns = live[session_id] + 1
            else:
                counter += 1
                session_id, turns = f"{tag}-{counter}", 1
            thread_id, working_dir, model = record_fields(session_id, turns)
            out.write(f"B put {session_id} {turns}\n".encode())
            out.flush()
            store.put(SessionRecord(session_id, thread_id, working_dir, model, turns, time.time()))
            live[session_id] = turns
        out.write(b"A\n")
        out.flush()


if __name__ == "__main__":
    main()
