"""Named sessions: one conversation that any number of callers append to by name.

A session lives in one Codex home (the same name under two ``CODEX_HOME`` values is two sessions),
and its store keeps every message, so that a session whose Codex rollout is gone can go on in a new
thread seeded with its history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from claif_cod.engine.conversations import Message

MAX_SESSION_ID = 256


def session_id_problem(session_id: str) -> str | None:
    """What makes ``session_id`` no name for a session, if anything: it must be one that a listing
    shows on a line of its own and a caller can type again (printable, not blank)."""
    if not session_id.strip() or not session_id.isprintable() or len(session_id) > MAX_SESSION_ID:
        return (
            f"a session name needs 1 to {MAX_SESSION_ID} printable characters, not all spaces "
            "(no control or format character, no space but the plain one)"
        )
    return None


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    thread_id: str
    working_dir: str
    model: str | None
    turns: int
    last_used: float
    codex_home: str = ""
    """The Codex home the session lives in; ``""`` for a record from before homes were kept."""
    instructions: str | None = None
    """The developer instructions (system messages) the session started with: Codex keeps them in the
    thread's rollout, so a new thread seeded when that rollout is gone needs them from here."""
    last_turn: str | None = None
    """The id of the thread's last turn that was recorded (``""``: none yet; None: not known, a record
    from before these were kept).  A later turn in the rollout is one whose caller was never answered
    (claif-codd was killed during it): it is dropped when the thread is resumed."""


class SessionStore(Protocol):
    """Where sessions live: memory in-process, a crash-safe file in the daemon."""

    def get(self, session_id: str, codex_home: str = "") -> SessionRecord | None: ...

    def put(self, record: SessionRecord, messages: Sequence[Message] = ()) -> None:
        """Write ``record`` and append ``messages`` to its history, all or nothing."""
        ...

    def history(self, session_id: str, codex_home: str = "") -> list[Message]: ...

    def delete(self, session_id: str) -> bool:
        """Forget the name in every Codex home."""
        ...

    def all(self) -> list[SessionRecord]: ...


class MemorySessionStore:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], SessionRecord] = {}
        self._messages: dict[tuple[str, str], list[Message]] = {}

    def get(self, session_id: str, codex_home: str = "") -> SessionRecord | None:
        return self._records.get((session_id, codex_home))

    def put(self, record: SessionRecord, messages: Sequence[Message] = ()) -> None:
        key = (record.session_id, record.codex_home)
        self._records[key] = record
        self._messages.setdefault(key, []).extend(messages)

    def history(self, session_id: str, codex_home: str = "") -> list[Message]:
        return list(self._messages.get((session_id, codex_home), ()))

    def delete(self, session_id: str) -> bool:
        keys = [key for key in self._records if key[0] == session_id]
        for key in keys:
            del self._records[key]
            self._messages.pop(key, None)
        return bool(keys)

    def all(self) -> list[SessionRecord]:
        return list(self._records.values())


class SessionBook:
    """The engine's view of its store: lookups with legacy records adopted, and writes a failing store
    refused after a turn kept in memory and written with the next write that succeeds."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._unsaved: dict[tuple[str, str], tuple[SessionRecord, list[Message]]] = {}

    def lookup(self, session_id: str, codex_home: str) -> SessionRecord | None:
        unsaved = self._unsaved.get((session_id, codex_home))
        if unsaved is not None:
            return unsaved[0]
        record = self.store.get(session_id, codex_home)
        if record is None and codex_home:
            legacy = self.store.get(session_id, "")  # from before homes were kept: the first home adopts it
            if legacy is not None:
                return dataclasses.replace(legacy, codex_home=codex_home)
        return record

    def history(self, record: SessionRecord) -> list[Message]:
        unsaved = self._unsaved.get((record.session_id, record.codex_home))
        return self.store.history(record.session_id, record.codex_home) + (unsaved[1] if unsaved else [])

    def save(self, record: SessionRecord, messages: Sequence[Message] = ()) -> None:
        """Write now (after what was deferred); raises SessionStoreFailed when the store can't."""
        key = (record.session_id, record.codex_home)
        for other, (pending, pending_messages) in list(self._unsaved.items()):
            if other != key:
                self.store.put(pending, pending_messages)
                del self._unsaved[other]
        earlier = self._unsaved.get(key, (record, []))[1]
        self.store.put(record, [*earlier, *messages])
        self._unsaved.pop(key, None)

    def defer(self, record: SessionRecord, messages: Sequence[Message]) -> None:
        """Keep a write the store refused; the next :meth:`save` makes it."""
        key = (record.session_id, record.codex_home)
        earlier = self._unsaved.get(key, (record, []))[1]
        self._unsaved[key] = (record, [*earlier, *messages])

    def close(self, session_id: str) -> bool:
        deferred = [key for key in self._unsaved if key[0] == session_id]
        for key in deferred:
            del self._unsaved[key]
        return self.store.delete(session_id) or bool(deferred)
