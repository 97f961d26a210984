"""Named sessions: one conversation that any number of callers append to by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    thread_id: str
    working_dir: str
    model: str | None
    turns: int
    last_used: float


class SessionStore(Protocol):
    """Where session → thread bindings live: memory in-process, a crash-safe file in the daemon."""

    def get(self, session_id: str) -> SessionRecord | None: ...

    def put(self, record: SessionRecord) -> None: ...

    def delete(self, session_id: str) -> bool: ...

    def all(self) -> list[SessionRecord]: ...


class MemorySessionStore:
    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}

    def get(self, session_id: str) -> SessionRecord | None:
        return self._records.get(session_id)

    def put(self, record: SessionRecord) -> None:
        self._records[record.session_id] = record

    def delete(self, session_id: str) -> bool:
        return self._records.pop(session_id, None) is not None

    def all(self) -> list[SessionRecord]:
        return list(self._records.values())
