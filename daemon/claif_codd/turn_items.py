"""What a turn produced, in the protocol's words: its usage, its Codex items, a file change's files."""

from __future__ import annotations

from claif_cod.engine import approvals, wire_items
from claif_cod.engine.events import TurnUsage
from claif_cod.protocol import (
    AgentMessageItem,
    CodexItem,
    CommandExecutionItem,
    FileChange,
    FileChangeItem,
    OtherItem,
    ReasoningItem,
    Usage,
)


def usage(turn: TurnUsage) -> Usage:
    return Usage(
        prompt_tokens=turn.input_tokens,
        completion_tokens=turn.output_tokens,
        total_tokens=turn.total_tokens or turn.input_tokens + turn.output_tokens,
        cached_tokens=turn.cached_input_tokens,
        reasoning_tokens=turn.reasoning_output_tokens,
    )


def protocol_changes(changes: tuple[approvals.FileChange, ...]) -> list[FileChange]:
    return [FileChange(path=c.path, kind=c.kind, diff=c.diff, move_path=c.move_path) for c in changes]


def codex_item(item: wire_items.ThreadItem) -> CodexItem:
    if isinstance(item, wire_items.AgentMessageItem):
        return AgentMessageItem(id=item.id, text=item.text)
    if isinstance(item, wire_items.CommandExecutionItem):
        return CommandExecutionItem(
            id=item.id,
            command=item.command,
            cwd=item.cwd,
            status=item.status,
            exit_code=item.exit_code,
            output=item.aggregated_output,
        )
    if isinstance(item, wire_items.FileChangeItem):
        return FileChangeItem(id=item.id, status=item.status, changes=protocol_changes(approvals.file_changes(item)))
    if isinstance(item, wire_items.ReasoningItem):
        return ReasoningItem(id=item.id, summary="\n".join(item.summary))
    return OtherItem(id=item.id, item_type=item.type)
