"""What a turn produces, as the daemon reports it: Codex items and the live session events, each a
tagged union on ``type``, plus the parts (usage, file changes) that params and results reuse.
"""

from __future__ import annotations

from typing import TypeAlias

from .payload import Payload


class Usage(Payload):
    """Token counts in OpenAI's vocabulary, so they map straight onto ``CompletionUsage``."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class FileChange(Payload):
    path: str
    kind: str
    """Codex's change kind, e.g. ``add``, ``delete``, ``update``."""
    diff: str = ""
    """Codex's diff of the change: an added file's content, a unified diff for an update."""
    move_path: str | None = None
    """Where an ``update`` moves the file to, if it does."""


# --- Codex items: what a turn produced, tagged by "type" -------------------------------------------


class _CodexItemBase(Payload, tag_field="type"):
    id: str


class AgentMessageItem(_CodexItemBase, tag="agent_message"):
    text: str


class CommandExecutionItem(_CodexItemBase, tag="command_execution"):
    command: str
    cwd: str
    status: str
    exit_code: int | None = None
    output: str | None = None


class FileChangeItem(_CodexItemBase, tag="file_change"):
    status: str
    changes: list[FileChange] = []


class ReasoningItem(_CodexItemBase, tag="reasoning"):
    summary: str


class OtherItem(_CodexItemBase, tag="other"):
    """Any Codex item type this protocol version doesn't model; ``item_type`` is Codex's name for it."""

    item_type: str


CodexItem: TypeAlias = AgentMessageItem | CommandExecutionItem | FileChangeItem | ReasoningItem | OtherItem


# --- session events: the live view of a turn, tagged by "type" -------------------------------------


class _SessionEventBase(Payload, tag_field="type"):
    pass


class TextDelta(_SessionEventBase, tag="text_delta"):
    item_id: str
    delta: str


class TextReset(_SessionEventBase, tag="text_reset"):
    """Codex retried: drop the partial text received so far for ``item_id``."""

    item_id: str


class ItemStarted(_SessionEventBase, tag="item_started"):
    item: CodexItem


class ItemCompleted(_SessionEventBase, tag="item_completed"):
    item: CodexItem


class UsageEvent(_SessionEventBase, tag="usage"):
    usage: Usage


class TurnStarted(_SessionEventBase, tag="turn_started"):
    turn_id: str


SessionEvent: TypeAlias = TextDelta | TextReset | ItemStarted | ItemCompleted | UsageEvent | TurnStarted
