"""A ``chat.completions`` request's messages as Codex sees them, and a re-sent history read once.

A chat client re-sends the whole history with every request: the messages of its last request,
the reply, and a new user message.  Reading them into a :class:`Conversation` and hashing that
history to find its warm thread cost a few µs a message each time (~0.1 ms of the engine's time
at 200 messages, several times that right after a turn, when the code is cold).
:class:`HistoryMemo` keeps what reading a request's messages made; a later request that begins
with exactly those messages reads only the ones after them, and its hash continues from the
earlier request's (see :class:`claif_cod.engine.conversations.Prior`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec

from claif_cod.engine.conversations import Conversation, HistoryItem, Message, Prior
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.images import Image
from claif_cod.engine.tools import ToolResult
from claif_cod.openai_compat.content_parts import CHAT_PARTS, refused_part
from claif_cod.openai_compat.images import ImageRef
from claif_cod.openai_compat.ranges import not_one_of
from claif_cod.openai_compat.tool_calls import ChatToolCall, engine_calls


class ChatMessage(msgspec.Struct):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ChatToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    audio: dict[str, Any] | None = None
    function_call: dict[str, Any] | None = None


REPORTED_FIELDS = ("name", "refusal", "audio", "function_call")
"""Message fields Codex has no place for (a participant's name, an assistant's refusal or audio, the
deprecated ``function_call``): reported as ``messages.<field>``, the message read without them."""
CACHE_BREAKPOINT = "prompt_cache_breakpoint"
"""A content part's explicit cache breakpoint: Codex caches by thread, so reported."""


def reported_fields(message: object, reported: set[str]) -> None:
    """Adds to ``reported`` the :data:`REPORTED_FIELDS` ``message`` has (a :class:`ChatMessage`, or
    however else a reader decoded it), and a content part's :data:`CACHE_BREAKPOINT`."""
    for field in REPORTED_FIELDS:
        if getattr(message, field, None) is not None:
            reported.add(f"messages.{field}")
    content = getattr(message, "content", None)
    if type(content) is list:
        if any(type(part) is dict and CACHE_BREAKPOINT in part for part in content):
            reported.add(f"messages.content.{CACHE_BREAKPOINT}")
        if any(type(part) is dict and part.get("type") == "refusal" for part in content):
            reported.add("messages.refusal")  # an assistant's refusal as a content part


class _Read(NamedTuple):
    """Messages read: the instructions and the history items they make, in order, and what of them is
    reported (:func:`reported_fields`)."""

    messages: list[ChatMessage]
    instructions: list[str]
    turns: list[HistoryItem]
    reported: frozenset[str]


def build_conversation(
    messages: list[ChatMessage],
    images: Mapping[str, Image] | None = None,
    *,
    refs: list[ImageRef] | None = None,
    reported: set[str] | None = None,
) -> Conversation:
    """System and developer messages become instructions; the rest user/assistant text, tool calls and results.

    The request ends with a user message (the turn's input) or with the results of the tool calls of
    the assistant message before them (the turn answers them). Image parts of user and tool messages are
    collected into ``refs`` and taken from ``images`` once loaded; what is reported of the messages
    is added to ``reported``."""
    read = _read(messages, None, images, refs)
    if reported is not None:
        reported.update(read.reported)
    return _conversation(read)


def _read(
    messages: list[ChatMessage], start: _Read | None, images: Mapping[str, Image] | None, refs: list[ImageRef] | None
) -> _Read:
    """``messages`` read, after the first ones that ``start`` read already."""
    if not messages:
        why = (
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
        )
        raise InvalidRequest(why, param="messages", code="empty_array")
    instructions = [*start.instructions] if start is not None else []
    turns = [*start.turns] if start is not None else []
    reported = set(start.reported) if start is not None else set()
    unanswered: list[str] = []  # a read kept to start from has none: every request answers all its calls
    for index in range(len(start.messages) if start is not None else 0, len(messages)):
        message = messages[index]
        role, content = message.role, message.content
        if unanswered and role != "tool":
            raise _unanswered_calls(unanswered, f"messages[{index}].role")
        if type(content) is list or not (
            message.name is None and message.refusal is None and message.audio is None and message.function_call is None
        ):
            reported_fields(message, reported)
        if type(content) is str:  # the common case, kept cheap: histories are re-sent each turn
            if role == "user":
                turns.append(Message("user", content))
                continue
            if role == "assistant" and not message.tool_calls:
                turns.append(Message("assistant", content))
                continue
        where = f"messages[{index}]"
        if content is None and role in _CONTENT_REQUIRED:  # as OpenAI refuses it: only an assistant's may be null
            raise InvalidRequest("Invalid value for 'content': expected a string, got null.", param=f"{where}.content")
        text, parts = _content(message, where, allow_images=role in ("user", "tool"))
        if refs is not None:
            refs.extend(parts)
        found = tuple(images[p.where] for p in parts if images and p.where in images)
        if role in ("system", "developer"):
            instructions.append(text)
        elif role == "user":
            turns.append(Message("user", text, found))
        elif role == "assistant":
            if text or not message.tool_calls:
                turns.append(Message("assistant", text))
            calls = engine_calls(message.tool_calls or [], where)
            turns += calls
            unanswered = [call.call_id for call in calls]
        elif role == "tool":
            if not message.tool_call_id:
                raise InvalidRequest(f"{where}: a tool message needs tool_call_id", param=where)
            if message.tool_call_id not in unanswered:
                raise InvalidRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceding message with "
                    f"'tool_calls' (no call {message.tool_call_id!r} awaits its result)",
                    param=f"{where}.role",
                )
            unanswered.remove(message.tool_call_id)
            turns.append(ToolResult(call_id=message.tool_call_id, output=text, images=found))
        else:
            raise _unknown_role(role, f"{where}.role")
    if unanswered:
        raise _unanswered_calls(unanswered, "messages")
    return _Read(messages, instructions, turns, frozenset(reported))


def _unknown_role(role: str, param: str) -> InvalidRequest:
    if role in _OPENAI_ROLES:  # OpenAI's deprecated 'function' role: its calls are the 'tool' role's now
        return InvalidRequest(f"{param}: role {role!r} is not supported (a tool's result is a 'tool' message)", param)
    return not_one_of(role, param, _OPENAI_ROLES)


def _unanswered_calls(calls: list[str], param: str) -> InvalidRequest:
    return InvalidRequest(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(calls)}",
        param=param,
    )


def _conversation(read: _Read, prior: Prior | None = None) -> Conversation:
    turns = read.turns
    last = turns[-1] if turns else None
    instructions = "\n\n".join(read.instructions) if read.instructions else None
    if last is None or isinstance(last, ToolResult) or (isinstance(last, Message) and last.role == "assistant"):
        # Results to answer; the model's own message, after which it speaks again, as OpenAI's does
        # (langgraph asks so for an agent's structured answer); or only system/developer messages, which
        # OpenAI answers too (a whole prompt sent as the system message): a turn with no new input.
        return Conversation(instructions=instructions, history=tuple(turns), prompt=None, prior=prior)
    if not isinstance(last, Message) or last.role != "user":
        raise InvalidRequest("the last non-system message must come from the user or a tool", param="messages")
    return Conversation(
        instructions=instructions,
        history=tuple(turns[:-1]),
        prompt=last.text,
        prompt_images=last.images,
        prior=prior,
    )


_CONTENT_REQUIRED = frozenset({"system", "developer", "user", "tool"})
_OPENAI_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
"""The roles OpenAI's chat takes, in the order its refusal of another one names them."""


def _content(message: ChatMessage, where: str, *, allow_images: bool) -> tuple[str, list[ImageRef]]:
    content = message.content
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    refs: list[ImageRef] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
            continue
        if kind == "refusal" and message.role == "assistant" and isinstance(part.get("refusal"), str):
            continue  # read without it, as the message's refusal field (reported_fields)
        image_url = part.get("image_url")
        url = image_url.get("url") if isinstance(image_url, dict) else None
        if kind == "image_url" and allow_images and isinstance(url, str):
            detail = image_url.get("detail") if isinstance(image_url, dict) else None
            part_where = f"{where}.content[{j}]"
            refs.append(ImageRef(url, part_where, detail, detail_at=f"{part_where}.image_url.detail"))
            continue
        raise refused_part(part, f"{where}.content[{j}]", message.role, images_here=allow_images, kinds=CHAT_PARTS)
    return "\n".join(texts), refs


_decode_messages = msgspec.json.Decoder(list[ChatMessage]).decode


class _Kept(NamedTuple):
    head: memoryview
    """The messages' JSON array without its closing bracket: what a request re-sending them begins with."""
    read: _Read
    prior: Prior
    size: int
    """About the memory it holds: its JSON twice over (the bytes, and the strings decoded from them)
    and ~220 bytes a message (its two structs and their slots), as measured on CPython 3.11."""


class Messages(NamedTuple):
    """A request's messages, decoded, and the kept read they begin with (None: read from the start)."""

    decoded: list[ChatMessage]
    array: bytes
    earlier: _Kept | None


_START_BYTES = 64
"""A kept read is looked up by the first bytes of its messages' JSON (several may share them: the
whole start is compared); a shorter history is not worth keeping."""
_SHARING_A_START = 16


class HistoryMemo:
    """What reading recent requests' messages made, for requests that re-send them.

    Only messages without images are kept (their images are loaded, and the conversation rebuilt, per
    request), at most ``capacity`` reads holding about ``max_bytes`` of memory, least recently kept
    out first; a read that a later request extends gives way to that request's.  Used on one event
    loop."""

    def __init__(self, capacity: int = 64, max_bytes: int = 8 << 20) -> None:
        self._capacity, self._max_bytes = capacity, max_bytes
        self._order: OrderedDict[int, _Kept] = OrderedDict()
        self._by_start: dict[bytes, list[_Kept]] = {}
        self._bytes = 0

    def messages(self, array: bytes) -> Messages:
        """The messages of ``array`` (a request's ``messages``, as JSON), decoding only those after a
        kept read's.  Raises ``msgspec.DecodeError`` as decoding them all would (maybe worded otherwise)."""
        for kept in self._by_start.get(array[:_START_BYTES], ()):
            if array.startswith(kept.head):
                rest = array[len(kept.head) :].lstrip()
                if rest[:1] == b"]":  # the same messages again
                    return Messages([*kept.read.messages], array, kept)
                if rest[:1] == b",":
                    return Messages([*kept.read.messages, *_decode_messages(b"[" + rest[1:])], array, kept)
        return Messages(_decode_messages(array), array, None)

    def conversation(self, messages: Messages, refs: list[ImageRef], reported: set[str]) -> Conversation:
        """:func:`build_conversation` of the ``messages`` of a request, reading only those after the
        kept read they begin with, and keeping this read; ``refs`` and ``reported`` as there."""
        earlier = messages.earlier
        read = _read(messages.decoded, earlier.read if earlier is not None else None, None, refs)
        reported.update(read.reported)
        same_instructions = earlier is not None and read.instructions == earlier.read.instructions
        conversation = _conversation(read, earlier.prior if earlier is not None and same_instructions else None)
        if earlier is not None:
            self._drop(earlier)
        array = messages.array
        end = array.rindex(b"]")
        while end > 0 and array[end - 1] in b" \t\r\n":
            end -= 1
        size = 2 * end + 220 * len(messages.decoded)
        if not refs and end >= _START_BYTES and size <= self._max_bytes:
            self._keep(_Kept(memoryview(array)[:end], read, conversation.as_prior(), size))
        return conversation

    def _keep(self, kept: _Kept) -> None:
        sharing = self._by_start.setdefault(bytes(kept.head[:_START_BYTES]), [])
        if len(sharing) == _SHARING_A_START:
            self._drop(sharing[0])  # (the list stays: it holds others)
        sharing.append(kept)
        self._order[id(kept)] = kept
        self._bytes += kept.size
        while len(self._order) > self._capacity or self._bytes > self._max_bytes:
            self._drop(next(iter(self._order.values())))

    def _drop(self, kept: _Kept) -> None:
        del self._order[id(kept)]
        self._bytes -= kept.size
        start = bytes(kept.head[:_START_BYTES])
        sharing = self._by_start[start]
        del sharing[next(i for i, other in enumerate(sharing) if other is kept)]
        if not sharing:
            del self._by_start[start]
