"""What Codex asks before it runs a command or changes files, and what a caller answers.

Codex's question about a file change names only the change's item: the changes themselves (paths,
kinds, diffs) come in the ``fileChange`` item it announced just before. :func:`file_changes` reads
them from that item, so that whoever is asked sees what would change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from claif_cod._log import get_logger

if TYPE_CHECKING:
    from claif_cod.engine import wire_items

log = get_logger("claif_cod.engine")

Decision = Literal["accept", "acceptForSession", "decline", "cancel"]
DECISIONS: frozenset[str] = frozenset(get_args(Decision))


@dataclass(frozen=True)
class FileChange:
    """One file of a change Codex asks to make."""

    path: str
    kind: str
    """``add``, ``delete`` or ``update``."""
    diff: str = ""
    """Codex's diff of the change (an added file's content, a unified diff for an update)."""
    move_path: str | None = None
    """Where an ``update`` moves the file to, if it does."""


@dataclass(frozen=True)
class ApprovalRequest:
    kind: Literal["command", "file_change"]
    thread_id: str
    turn_id: str
    item_id: str
    command: str | None = None
    cwd: str | None = None
    reason: str | None = None
    changes: tuple[FileChange, ...] = ()
    """A file change's files (empty for a command)."""
    grant_root: str | None = None
    """A file change may also ask for write access under this directory for the rest of the session."""


ApprovalHandler = Callable[[ApprovalRequest], Awaitable[Decision]]


async def decline_all(_request: ApprovalRequest) -> Decision:
    """The policy when nobody can be asked: Codex goes on without running the action."""
    return "decline"


def file_changes(item: wire_items.FileChangeItem) -> tuple[FileChange, ...]:
    return tuple(FileChange(c.path, c.kind.type, c.diff, c.kind.move_path) for c in item.changes)


def checked_decision(answer: object) -> Decision:
    """A handler's answer as Codex is told it: anything but one of the four decisions (``"yes"``,
    ``None``, ``True``, a typo) is declined, and logged, the same in-process and through the daemon.

    Unchecked, it went to Codex as it was: in-process Codex refused it ("approval request failed")
    with nothing said to the caller, and through the daemon ``approval.respond`` was refused, so the
    turn waited for the daemon's 120 s deadline (or failed with the request's timeout first)."""
    if isinstance(answer, str) and answer in DECISIONS:
        return answer  # type: ignore[return-value]  # one of Decision's values, checked just above
    log.error("engine.approval_handler_bad_decision", decision=repr(answer)[:200], expected=sorted(DECISIONS))
    return "decline"
