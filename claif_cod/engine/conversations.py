"""Stateless chat histories mapped onto stateful Codex threads.

A thread is remembered under the hash of everything that produced its current state:
its process key, its developer instructions and every message including the reply Codex
gave.  A request whose earlier messages hash to a remembered thread continues that thread
with only its new user message.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import msgspec

from claif_cod.engine import wire
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.images import Image
from claif_cod.engine.tools import NO_TOOLS, ThreadTools, ToolCall, ToolResult, canonical_arguments

Role = Literal["user", "assistant"]
Api = Literal["chat", "responses"]


class Message(msgspec.Struct, frozen=True):
    role: Role
    text: str
    images: tuple[Image, ...] = ()


HistoryItem = Message | ToolCall | ToolResult
"""A message, a tool call the model made, or the result the caller gave it."""


class Prior(NamedTuple):
    """An earlier request's hash states (see :meth:`Conversation.as_prior`) and the length of its
    history, which a later conversation's history begins with, under the same instructions and API."""

    states: dict[tuple[ProcessKey, bytes], Any]
    length: int


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
    api: Api = "chat"
    """The API it came through: part of the hash, so a chat request never continues a Responses
    thread (whose newest stored response must stay the one it ended with) nor the other way round."""
    prior: Prior | None = field(default=None, repr=False, compare=False)
    """An earlier request's states this history's hash continues from, given by a reader that knows
    this history begins with that request's (a caller re-sends the whole history every time)."""
    _states: dict[tuple[ProcessKey, bytes], Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    """The hash state after the history, per process key and tool set: a reply's hash continues it."""

    def sent(self) -> tuple[HistoryItem, ...]:
        """Everything the caller sent, in order (the history and the new user message)."""
        return (*self.history, *self._new())

    def _new(self) -> tuple[HistoryItem, ...]:
        """What :meth:`sent` adds to the history: the new user message, if the request ends with one."""
        if self.prompt is None:
            return ()
        return (Message("user", self.prompt, self.prompt_images),)

    def continued(self, replies: tuple[str, ...], calls: tuple[ToolCall, ...] = ()) -> tuple[HistoryItem, ...]:
        """The history after this turn (its assistant messages, then its calls), as the caller will
        send it next time."""
        return (*self.sent(), *_answer(replies, calls))

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

    def as_prior(self) -> Prior:
        """What a later conversation whose history begins with this one's (and the prompt after it)
        continues its hash from: the states this one's digests make, as they are made."""
        return Prior(self._states, len(self.history))

    def _state(self, key: ProcessKey, tools: ThreadTools) -> Any:
        material = _encode(tools.material())
        state = self._states.get((key, material))
        if state is None:
            prior = self.prior
            if prior is not None and (earlier := prior.states.get((key, material))) is not None:
                state = earlier.copy()
                _feed(state, self.history[prior.length :])
            else:
                state = _hash_state(key, self.instructions, material, self.history, self.api)
            self._states[key, material] = state
        return state

    def history_digest(self, key: ProcessKey, tools: ThreadTools = NO_TOOLS) -> str:
        """``history_hash`` of this request's history (computed once per conversation)."""
        return str(self._state(key, tools).hexdigest())

    def sent_digest(self, key: ProcessKey, tools: ThreadTools = NO_TOOLS) -> str:
        """``history_hash`` of :meth:`sent`, extending the history's hash by the new message only."""
        state = self._state(key, tools).copy()
        _feed(state, self._new())
        return str(state.hexdigest())

    def continued_digest(
        self,
        key: ProcessKey,
        replies: tuple[str, ...],
        tools: ThreadTools = NO_TOOLS,
        calls: tuple[ToolCall, ...] = (),
    ) -> str:
        """``history_hash`` of :meth:`continued`, extending the history's hash by this turn's items only."""
        state = self._state(key, tools).copy()
        _feed(state, (*self._new(), *_answer(replies, calls)))
        return str(state.hexdigest())


def _answer(replies: tuple[str, ...], calls: tuple[ToolCall, ...]) -> tuple[HistoryItem, ...]:
    """A turn's items as a caller sends them back: one assistant message per non-empty text (an empty
    one for a turn that said nothing and called nothing), then the calls."""
    texts: tuple[HistoryItem, ...] = tuple(Message("assistant", reply) for reply in replies if reply)
    if not texts and not calls:
        texts = (Message("assistant", ""),)
    return (*texts, *calls)


def results_then_said(history: Sequence[HistoryItem]) -> tuple[ToolResult, ...]:
    """The tool results a history ends with, but for user messages after them (pydantic-ai sends a
    tool's images so: its result, then a user message holding them); none when the model spoke after."""
    end = len(history)
    while end and type(item := history[end - 1]) is Message and item.role == "user":
        end -= 1
    start = end
    while start and isinstance(history[start - 1], ToolResult):
        start -= 1
    return tuple(item for item in history[start:end] if isinstance(item, ToolResult))


def inject_item(item: HistoryItem) -> wire.InjectItem:
    """A history item as the raw Responses item ``thread/inject_items`` takes: never flattened into text."""
    if isinstance(item, ToolCall):
        return wire.FunctionCallItem(call_id=item.call_id, name=item.name, arguments=item.arguments)
    if isinstance(item, ToolResult):
        if not item.images:
            return wire.FunctionCallOutputItem(call_id=item.call_id, output=item.output)
        return wire.FunctionCallOutputItem(call_id=item.call_id, output=_parts("input_text", item.output, item.images))
    return wire.MessageItem(
        role=item.role, content=_parts("input_text" if item.role == "user" else "output_text", item.text, item.images)
    )


def _parts(
    text_type: Literal["input_text", "output_text"], text: str, images: tuple[Image, ...]
) -> list[wire.ContentPart | wire.ImagePart]:
    """Content parts: the text (also when empty, unless there are only images), then the images."""
    content: list[wire.ContentPart | wire.ImagePart] = []
    if text or not images:
        content.append(wire.ContentPart(type=text_type, text=text))
    content.extend(wire.ImagePart(image_url=image.data_url, detail=image.detail or msgspec.UNSET) for image in images)
    return content


_encode = msgspec.json.encode


def _item_material(item: HistoryItem) -> bytes:
    """One JSON value per item (an object or an array), each followed by a comma: item boundaries
    are part of the hash, and the material of a history is that of its parts one after another."""
    if type(item) is Message:
        if not item.images:
            return _encode(item) + b","
        return _encode([item.role, item.text, *(image.source for image in item.images)]) + b","
    if isinstance(item, ToolCall):
        return _encode(["call", item.call_id, item.name, canonical_arguments(item.arguments)]) + b","
    if isinstance(item, ToolResult):
        return _encode(["result", item.call_id, item.output, *(image.source for image in item.images)]) + b","
    raise TypeError(f"not a history item: {type(item).__name__}")


def _feed(state: Any, items: Iterable[HistoryItem]) -> None:
    items = tuple(items)
    if items and all(type(item) is Message and not item.images for item in items):
        # The common case (text messages only) in one call into C: a history is re-sent and hashed
        # each turn.  The array's elements are the items' own encodings, comma-separated.
        state.update(_encode(items)[1:-1] + b",")
    else:
        state.update(b"".join(map(_item_material, items)))


def _hash_state(
    key: ProcessKey, instructions: str | None, tools_material: bytes, history: Iterable[HistoryItem], api: Api
) -> Any:
    """``tools_material``: the JSON of :meth:`ThreadTools.material`, which the caller has made already."""
    state = hashlib.sha256(
        _encode(
            [
                [key.codex_path, key.codex_home, key.key_fingerprint, key.working_dir, key.sandbox, key.approval],
                instructions,
                msgspec.Raw(tools_material),
                api,
            ]
        )
    )
    _feed(state, history)
    return state


def history_hash(
    key: ProcessKey,
    instructions: str | None,
    history: tuple[HistoryItem, ...],
    tools: ThreadTools = NO_TOOLS,
    api: Api = "chat",
) -> str:
    """What a warm thread is remembered under; a running hash, so a reply extends it cheaply."""
    return str(_hash_state(key, instructions, _encode(tools.material()), history, api).hexdigest())


class ConversationIndex:
    """``history hash → thread id`` with LRU eviction; taking an entry removes it.

    Removal on take is what keeps two concurrent requests with the same history from
    sharing one thread: the second misses and gets a thread of its own.  The reverse map makes
    forgetting a thread cost its own entries only (a Responses request forgets its thread's).
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._by_thread: dict[str, set[str]] = {}

    def take(self, digest: str) -> str | None:
        thread_id = self._entries.pop(digest, None)
        if thread_id is not None:
            self._unlink(digest, thread_id)
        return thread_id

    def peek(self, digest: str) -> str | None:
        return self._entries.get(digest)

    def remember(self, digest: str, thread_id: str) -> None:
        self.take(digest)
        self._entries[digest] = thread_id
        self._by_thread.setdefault(thread_id, set()).add(digest)
        while len(self._entries) > self._capacity:
            self._unlink(*self._entries.popitem(last=False))

    def forget_thread(self, thread_id: str) -> None:
        self.forget_threads({thread_id})

    def forget_threads(self, thread_ids: set[str]) -> None:
        for thread_id in thread_ids:
            for digest in self._by_thread.pop(thread_id, ()):
                del self._entries[digest]

    def _unlink(self, digest: str, thread_id: str) -> None:
        digests = self._by_thread[thread_id]
        digests.discard(digest)
        if not digests:
            del self._by_thread[thread_id]

    def __len__(self) -> int:
        return len(self._entries)
