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

from claif_cod.engine import wire
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.images import Image
from claif_cod.engine.tools import NO_TOOLS, ThreadTools, ToolCall, ToolResult, canonical_arguments

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    text: str
    images: tuple[Image, ...] = ()


HistoryItem = Message | ToolCall | ToolResult
"""A message, a tool call the model made, or the result the caller gave it."""


@dataclass(frozen=True)
class Conversation:
    """A request as Codex sees it: instructions, earlier turns, and the new user message.

    ``prompt`` is None when the request ends with tool results instead of a user message: the
    results (the last items of ``history``) are what the turn answers.
    """

    instructions: str | None
    history: tuple[HistoryItem, ...]
    prompt: str | None
    prompt_images: tuple[Image, ...] = ()

    def sent(self) -> tuple[HistoryItem, ...]:
        """Everything the caller sent, in order (the history and the new user message)."""
        if self.prompt is None:
            return self.history
        return (*self.history, Message("user", self.prompt, self.prompt_images))

    def continued(self, reply: str, calls: tuple[ToolCall, ...] = ()) -> tuple[HistoryItem, ...]:
        """The history after this turn, as the caller will send it next time."""
        answer: tuple[HistoryItem, ...] = (Message("assistant", reply),) if reply or not calls else ()
        return (*self.sent(), *answer, *calls)

    def pending_results(self) -> tuple[ToolResult, ...]:
        """The tool results that end the request (empty when it ends with a user message)."""
        if self.prompt is not None:
            return ()
        tail: list[ToolResult] = []
        for item in reversed(self.history):
            if not isinstance(item, ToolResult):
                break
            tail.insert(0, item)
        return tuple(tail)


def inject_item(item: HistoryItem) -> wire.InjectItem:
    """A history item as the raw Responses item ``thread/inject_items`` takes: never flattened into text."""
    if isinstance(item, ToolCall):
        return wire.FunctionCallItem(call_id=item.call_id, name=item.name, arguments=item.arguments)
    if isinstance(item, ToolResult):
        return wire.FunctionCallOutputItem(call_id=item.call_id, output=item.output)
    content: list[wire.ContentPart | wire.ImagePart] = []
    if item.text or not item.images:
        content.append(wire.ContentPart(type="input_text" if item.role == "user" else "output_text", text=item.text))
    content.extend(wire.ImagePart(image_url=image.data_url) for image in item.images)
    return wire.MessageItem(role=item.role, content=content)


def _item_material(item: HistoryItem) -> list[str]:
    if isinstance(item, Message):
        return [item.role, item.text, *(image.source for image in item.images)]
    if isinstance(item, ToolCall):
        return ["call", item.call_id, item.name, canonical_arguments(item.arguments)]
    return ["result", item.call_id, item.output]


def history_hash(
    key: ProcessKey, instructions: str | None, history: tuple[HistoryItem, ...], tools: ThreadTools = NO_TOOLS
) -> str:
    material = msgspec.json.encode(
        [
            [key.codex_path, key.codex_home, key.key_fingerprint, key.working_dir, key.sandbox, key.approval],
            instructions,
            [_item_material(m) for m in history],
            tools.material(),
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
