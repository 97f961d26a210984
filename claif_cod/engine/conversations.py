"""Stateless chat histories mapped onto stateful Codex threads.

A thread is remembered under the hash of everything that produced its current state:
its process key, its developer instructions and every message including the reply Codex
gave.  A request whose earlier messages hash to a remembered thread continues that thread
with only its new user message.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from claif_cod.engine.config import ProcessKey

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    text: str


@dataclass(frozen=True)
class Conversation:
    """A request as Codex sees it: instructions, earlier turns, and the new user message."""

    instructions: str | None
    history: tuple[Message, ...]
    prompt: str
    _states: dict[ProcessKey, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    """The hash state after the history, per process key: the reply's hash continues it."""

    def continued(self, reply: str) -> tuple[Message, ...]:
        """The history after this turn, as the caller will send it next time."""
        return (*self.history, Message("user", self.prompt), Message("assistant", reply))

    def _state(self, key: ProcessKey) -> Any:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _hash_state(key, self.instructions, self.history)
        return state

    def history_digest(self, key: ProcessKey) -> str:
        """``history_hash`` of this request's history (computed once per conversation)."""
        return str(self._state(key).hexdigest())

    def continued_digest(self, key: ProcessKey, reply: str) -> str:
        """``history_hash`` of :meth:`continued`, extending the history's hash by two messages only."""
        state = self._state(key).copy()
        _feed(state, (Message("user", self.prompt), Message("assistant", reply)))
        return str(state.hexdigest())


_encode = msgspec.json.encode


def _feed(state: Any, messages: Iterable[Message]) -> None:
    # Each message is one JSON array: self-delimiting, so message boundaries are part of the hash.
    for m in messages:
        state.update(_encode((m.role, m.text)))


def _hash_state(key: ProcessKey, instructions: str | None, history: Iterable[Message]) -> Any:
    state = hashlib.sha256(
        _encode(
            [
                [key.codex_path, key.codex_home, key.key_fingerprint, key.working_dir, key.sandbox, key.approval],
                instructions,
            ]
        )
    )
    _feed(state, history)
    return state


def history_hash(key: ProcessKey, instructions: str | None, history: tuple[Message, ...]) -> str:
    """What a warm thread is remembered under; a running hash, so a reply extends it cheaply."""
    return str(_hash_state(key, instructions, history).hexdigest())


class ConversationIndex:
    """``history hash → thread id`` with LRU eviction; taking an entry removes it.

    Removal on take is what keeps two concurrent requests with the same history from
    sharing one thread: the second misses and gets a thread of its own.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, str] = OrderedDict()

    def take(self, digest: str) -> str | None:
        return self._entries.pop(digest, None)

    def peek(self, digest: str) -> str | None:
        return self._entries.get(digest)

    def remember(self, digest: str, thread_id: str) -> None:
        self._entries[digest] = thread_id
        self._entries.move_to_end(digest)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget_thread(self, thread_id: str) -> None:
        self.forget_threads({thread_id})

    def forget_threads(self, thread_ids: set[str]) -> None:
        for digest in [d for d, t in self._entries.items() if t in thread_ids]:
            del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)
