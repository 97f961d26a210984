"""Stateless chat histories mapped onto stateful Codex threads.

A thread is remembered under the hash of everything that produced its current state:
its process key, its developer instructions and every message including the reply Codex
gave.  A request whose earlier messages hash to a remembered thread continues that thread
with only its new user message.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import msgspec

from claif_cod.engine.config import ProcessKey
from claif_cod.engine.images import Image

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    text: str
    images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """A request as Codex sees it: instructions, earlier turns, and the new user message."""

    instructions: str | None
    history: tuple[Message, ...]
    prompt: str
    prompt_images: tuple[Image, ...] = ()

    def continued(self, reply: str) -> tuple[Message, ...]:
        """The history after this turn, as the caller will send it next time."""
        return (*self.history, Message("user", self.prompt, self.prompt_images), Message("assistant", reply))


def history_hash(key: ProcessKey, instructions: str | None, history: tuple[Message, ...]) -> str:
    material = msgspec.json.encode(
        [
            [key.codex_path, key.codex_home, key.key_fingerprint, key.working_dir, key.sandbox, key.approval],
            instructions,
            [[m.role, m.text, *(i.source for i in m.images)] for m in history],
        ]
    )
    return hashlib.sha256(material).hexdigest()


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
        for digest in [d for d, t in self._entries.items() if t == thread_id]:
            del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)
