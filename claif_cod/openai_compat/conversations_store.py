"""Where OpenAI conversations live: a conversation's metadata and its items, in order.

A conversation (``client.conversations``) is a list of Responses items kept between requests: the
Agents SDK's ``OpenAIConversationsSession`` reads and writes it item by item, and
``responses.create(conversation=...)`` runs on its items and then appends the request's input and
the response's output. In-process the conversations live in memory; the daemon keeps them in
SQLite (``claif_codd.conversation_registry``) so that they survive its restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


@dataclass(frozen=True)
class ConversationRecord:
    conversation_id: str
    created_at: int
    metadata: bytes
    """The metadata as a JSON object (validated: string keys and values)."""


class StoredItem(NamedTuple):
    item_id: str
    body: bytes
    """The item as JSON, as ``conversations.items.list`` lists it (with its ``id``)."""


class ConversationStore(Protocol):
    """A store that keeps conversations in a file raises
    :class:`~.responses_store.ResponseStoreFailed` when it cannot write one (nothing was changed),
    but for ``append(..., deferrable=True)``."""

    def create(self, record: ConversationRecord, items: Sequence[StoredItem]) -> None: ...

    def get(self, conversation_id: str) -> ConversationRecord | None: ...

    def set_metadata(self, conversation_id: str, metadata: bytes) -> None: ...

    def delete(self, conversation_id: str) -> None:
        """The conversation and its items (nothing happens if it does not exist)."""

    def append(self, conversation_id: str, items: Sequence[StoredItem], *, deferrable: bool = False) -> None:
        """After the conversation's last item (it exists). ``deferrable``: the items of a response whose
        turn has run; a store that keeps them in a file and cannot write it then keeps them until its
        next write that succeeds, where it otherwise raises
        :class:`~.responses_store.ResponseStoreFailed` (nothing added)."""

    def items(self, conversation_id: str) -> list[StoredItem]:
        """Oldest first."""

    def delete_item(self, conversation_id: str, item_id: str) -> bool:
        """False when the conversation has no such item."""


MEMORY_CAPACITY = 4096
MEMORY_MAX_BYTES = 64 * 1024 * 1024
"""Of items (metadata is small and bounded): a session adds each turn's items, so a count alone would
let long conversations hold hundreds of MiB."""


@dataclass
class _Held:
    record: ConversationRecord
    items: list[StoredItem] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(item.body) for item in self.items)


class MemoryConversationStore:
    """The in-process store: at most ``capacity`` conversations and ``max_bytes`` of their items;
    the one written longest ago goes first (the one being written always stays)."""

    def __init__(self, capacity: int = MEMORY_CAPACITY, max_bytes: int = MEMORY_MAX_BYTES) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self.bytes = 0

    def create(self, record: ConversationRecord, items: Sequence[StoredItem]) -> None:
        held = _Held(record, list(items))
        self._held[record.conversation_id] = held
        self.bytes += held.size
        self._evict()

    def get(self, conversation_id: str) -> ConversationRecord | None:
        held = self._held.get(conversation_id)
        return None if held is None else held.record

    def set_metadata(self, conversation_id: str, metadata: bytes) -> None:
        held = self._written(conversation_id)
        held.record = ConversationRecord(conversation_id, held.record.created_at, metadata)

    def delete(self, conversation_id: str) -> None:
        held = self._held.pop(conversation_id, None)
        if held is not None:
            self.bytes -= held.size

    def append(self, conversation_id: str, items: Sequence[StoredItem], *, deferrable: bool = False) -> None:
        held = self._written(conversation_id)
        held.items.extend(items)
        self.bytes += sum(len(item.body) for item in items)
        self._evict()

    def items(self, conversation_id: str) -> list[StoredItem]:
        held = self._held.get(conversation_id)
        return [] if held is None else list(held.items)

    def delete_item(self, conversation_id: str, item_id: str) -> bool:
        held = self._held.get(conversation_id)
        found = None if held is None else next((i for i in held.items if i.item_id == item_id), None)
        if held is None or found is None:
            return False
        held.items.remove(found)
        self.bytes -= len(found.body)
        return True

    def _written(self, conversation_id: str) -> _Held:
        self._held.move_to_end(conversation_id)
        return self._held[conversation_id]

    def _evict(self) -> None:
        while len(self._held) > 1 and (len(self._held) > self._capacity or self.bytes > self._max_bytes):
            _, evicted = self._held.popitem(last=False)
            self.bytes -= evicted.size
