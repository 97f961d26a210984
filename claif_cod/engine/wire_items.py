"""The thread items of `codex app-server` (``item/started``, ``item/completed``) that claif_cod
interprets, decoded so that an item type a later Codex adds stays readable as :class:`OtherItem`.
"""

from __future__ import annotations

import msgspec

from claif_cod.engine.wire import Camel


class ModerationKind(Camel):
    """A hidden answer's ``replacement`` or a blocked one's ``reason``: Codex 0.171 gives only a kind
    (``wellbeingPromptHelpline``; ``protection``, ``cyber``), no replacement text."""

    kind: str = ""


class AgentMessageDisplay(Camel):
    """How Codex says to present a moderated answer: ``show``, ``hide`` or ``block``.

    One struct with an open ``mode`` rather than a tagged union: a mode a later Codex adds must
    not make the whole item undecodable.
    """

    mode: str
    replacement: ModerationKind | None = None
    reason: ModerationKind | None = None


class AgentMessageModeration(Camel):
    """``agentMessage.moderation`` (Codex 0.171+)."""

    moderated: bool = False
    display: AgentMessageDisplay | None = None


class AgentMessageItem(Camel, tag_field="type", tag="agentMessage"):
    id: str
    text: str = ""
    phase: str | None = None
    moderation: AgentMessageModeration | None = None

    @property
    def withheld(self) -> bool:
        """Moderation says this answer must not be shown (hidden or blocked)."""
        display = self.moderation.display if self.moderation is not None else None
        return display is not None and display.mode in ("hide", "block")


class ReasoningItem(Camel, tag_field="type", tag="reasoning"):
    id: str
    summary: list[str] = []


class CommandExecutionItem(Camel, tag_field="type", tag="commandExecution"):
    id: str
    command: str = ""
    cwd: str = ""
    status: str = "inProgress"
    exit_code: int | None = None
    aggregated_output: str | None = None


class PatchKind(msgspec.Struct):
    type: str
    move_path: str | None = None


class FileUpdate(Camel):
    path: str
    kind: PatchKind
    diff: str = ""


class FileChangeItem(Camel, tag_field="type", tag="fileChange"):
    id: str
    status: str = "inProgress"
    changes: list[FileUpdate] = []


class OtherItem(msgspec.Struct):
    """Any item type we do not interpret (user messages, web searches, ...)."""

    id: str
    type: str


KnownItem = AgentMessageItem | ReasoningItem | CommandExecutionItem | FileChangeItem
ThreadItem = KnownItem | OtherItem

_ACTIONS = frozenset({"mcpToolCall", "dynamicToolCall", "collabAgentToolCall", "subAgentActivity"})
"""Item types, besides commands and file changes, that act outside the conversation."""


def acts(item: ThreadItem) -> bool:
    """Whether Codex did something with ``item`` that running the turn again would do again: a
    command, a file change, a tool call, a sub-agent."""
    if isinstance(item, (CommandExecutionItem, FileChangeItem)):
        return True
    return isinstance(item, OtherItem) and item.type in _ACTIONS


_KNOWN_ITEM_TYPES = frozenset({"agentMessage", "reasoning", "commandExecution", "fileChange"})
_known_item_decoder = msgspec.json.Decoder(KnownItem)
_other_item_decoder = msgspec.json.Decoder(OtherItem)


def decode_item(raw: msgspec.Raw) -> ThreadItem:
    other = _other_item_decoder.decode(raw)
    if other.type in _KNOWN_ITEM_TYPES:
        known: KnownItem = _known_item_decoder.decode(raw)
        return known
    return other
