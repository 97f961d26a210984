"""Where Responses live between requests: response id → its Codex thread, turn and body.

``previous_response_id`` needs to know which thread and which turn produced a response, and
whether the thread has moved on since (then a continuation forks instead of appending to a
history someone else continued). In-process the records live in memory; the daemon keeps them
in SQLite (``claif_codd.response_registry``) so response ids survive its restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Protocol

from claif_cod.engine.errors import EngineError


@dataclass(frozen=True)
class ResponseRecord:
    response_id: str
    thread_id: str
    turn_id: str | None
    """None while the turn has not started yet (the record then only claims the thread)."""
    working_dir: str
    instructions: str | None
    created_at: float
    stored: bool
    """False for ``store=false``: the record keeps the thread's order, but the response cannot be fetched."""
    body: bytes
    """The ``Response`` JSON as last reported (``in_progress`` until the turn ends)."""
    input: bytes = b"[]"
    """The request's input items as ``responses.input_items.list`` lists them (a JSON array)."""


class ResponseStoreFailed(EngineError):
    """The response registry (``responses.db``, which also keeps the conversations) refused a write a
    request depends on; raised before anything happened: no turn ran, nothing was changed."""

    def __init__(self, path: str, reason: str, outcome: str = "the turn was not run") -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"the response registry {path} cannot be written ({reason}); {outcome}. "
            "Make the file and its directory writable (or free disk space) and retry"
        )


class ResponseStore(Protocol):
    """A store that keeps its records in a file may fail to write them (:class:`ResponseStoreFailed`)
    only where the request can still fail as if it never happened: a record without a turn (the
    claim made before the turn starts) and ``forget`` of a response that has ended (``responses.delete``).
    A write made once the turn has started, ``delete`` and ``forget`` of a response still in progress
    (a request that failed, taken back) never raise: what the file refuses then is kept and written later."""

    def get(self, response_id: str) -> ResponseRecord | None: ...

    def deleted(self, response_id: str) -> bool:
        """Whether the response is recorded as not stored (forgotten by ``responses.delete``, or made
        with ``store`` false), without reading its input (megabytes, when an agent re-sends a
        transcript of screenshots)."""

    def put(self, record: ResponseRecord) -> None:
        """Insert or replace; a new record becomes its thread's tip. Each put of a response carries
        the input of its first, but :func:`forgotten`'s (the file store writes an input only once)."""

    def delete(self, response_id: str) -> None:
        """Remove the record altogether (a response that never happened); see also ``forget``."""

    def forget(self, response_id: str) -> None:
        """``responses.delete``: drop the body and input, keep the thread's order (the record's place)."""

    def tip(self, thread_id: str) -> str | None:
        """The id of the newest response on ``thread_id``."""


MEMORY_CAPACITY = 4096
MEMORY_MAX_BYTES = 64 * 1024 * 1024
"""Agent libraries re-send the whole transcript each turn, and each response keeps its input: a
count alone would let a long conversation's records hold hundreds of MiB."""


def size(record: ResponseRecord) -> int:
    """What a record costs, counted by its two unbounded parts."""
    return len(record.body) + len(record.input)


class MemoryResponseStore:
    """The in-process store: the newest ``capacity`` responses, at most ``max_bytes`` of bodies and
    inputs (the newest one is kept whatever its size)."""

    def __init__(self, capacity: int = MEMORY_CAPACITY, max_bytes: int = MEMORY_MAX_BYTES) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._records: OrderedDict[str, ResponseRecord] = OrderedDict()
        self._tips: dict[str, str] = {}

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, response_id: str) -> ResponseRecord | None:
        return self._records.get(response_id)

    def deleted(self, response_id: str) -> bool:
        record = self._records.get(response_id)
        return record is not None and not record.stored

    def put(self, record: ResponseRecord) -> None:
        old = self._records.get(record.response_id)
        if old is None:
            self._tips[record.thread_id] = record.response_id
        else:
            self._bytes -= size(old)
        self._records[record.response_id] = record
        self._bytes += size(record)
        while len(self._records) > 1 and (len(self._records) > self._capacity or self._bytes > self._max_bytes):
            _, evicted = self._records.popitem(last=False)
            self._bytes -= size(evicted)
            if self._tips.get(evicted.thread_id) == evicted.response_id:
                del self._tips[evicted.thread_id]

    def delete(self, response_id: str) -> None:
        record = self._records.pop(response_id, None)
        if record is None:
            return
        self._bytes -= size(record)
        if self._tips.get(record.thread_id) == response_id:
            newer = [r for r in self._records.values() if r.thread_id == record.thread_id]
            if newer:
                self._tips[record.thread_id] = newer[-1].response_id
            else:
                del self._tips[record.thread_id]

    def tip(self, thread_id: str) -> str | None:
        return self._tips.get(thread_id)

    def forget(self, response_id: str) -> None:
        record = self._records.get(response_id)
        if record is not None:
            self._records[response_id] = forgotten(record)
            self._bytes -= size(record) - size(self._records[response_id])


def forgotten(record: ResponseRecord) -> ResponseRecord:
    """What a deleted response leaves behind: its place in its thread, nothing the caller sent or got."""
    return replace(record, stored=False, instructions=None, body=b"", input=b"[]")
