"""A file change Codex asks to approve: the question names the files, their kinds and diffs (Codex's
own request names only the item; the engine takes them from the item Codex announced before it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from chat_messages import patch_prompt, user
from loop_handlers import recording

from claif_cod import ApprovalRequest, CodexClient, FileChange


@pytest.mark.parametrize("decision", ["decline", "accept"])
def test_an_added_file_is_shown_with_its_content(
    codex_home: Path, workdir: Path, decision: Literal["accept", "decline"]
) -> None:
    seen: list[ApprovalRequest] = []
    handler = recording(seen, decision)

    with CodexClient(
        daemon="off", approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as client:
        client.chat.completions.create(
            model="o4-mini", messages=[user(patch_prompt("*** Add File: notes.txt", "+first line", "+second line"))]
        )
    [request] = seen
    assert request.kind == "file_change"
    assert request.item_id.startswith("call_")
    assert request.changes == (FileChange(str(workdir / "notes.txt"), "add", "first line\nsecond line\n"),)
    assert (workdir / "notes.txt").exists() == (decision == "accept")


def test_an_update_is_shown_as_a_diff(codex_home: Path, workdir: Path) -> None:
    (workdir / "a.py").write_text("x = 1\ny = 2\n")
    seen: list[ApprovalRequest] = []
    handler = recording(seen)

    with CodexClient(
        daemon="off", approval_policy="untrusted", sandbox_mode="workspace-write", approval_handler=handler
    ) as client:
        client.chat.completions.create(
            model="o4-mini",
            messages=[
                user(patch_prompt("*** Update File: a.py", "*** Move to: b.py", "@@", " x = 1", "-y = 2", "+y = 3"))
            ],
        )
    [request] = seen
    [change] = request.changes
    assert (change.path, change.kind, change.move_path) == (str(workdir / "a.py"), "update", str(workdir / "b.py"))
    assert "-y = 2\n+y = 3" in change.diff
    assert (workdir / "b.py").read_text() == "x = 1\ny = 3\n"
