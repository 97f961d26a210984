"""A file change's approval names the changes of the item Codex announced before asking, whether
the turn has read that item yet or it still waits in the turn's queue."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from claif_cod.engine.approvals import FileChange
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.inbox import Inbox
from claif_cod.engine.liveness import DEFAULT_LIVENESS
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.thread_messages import Notification, ThreadMessage
from claif_cod.engine.turns import Turn


class _Server:
    liveness = DEFAULT_LIVENESS

    def check_alive_soon(self) -> None:
        pass


def _turn(queue: Inbox[ThreadMessage]) -> Turn:
    key = ProcessKey("codex", None, None, "/w", None, None)
    handle = ThreadHandle("t", key, None, _Server())  # type: ignore[arg-type]
    return Turn(handle, "u", queue, None, lambda _turn, _outcome: None)


def _item_started(item: dict[str, Any], turn_id: str = "u") -> Notification:
    params = {"threadId": "t", "turnId": turn_id, "item": item}
    return Notification("item/started", msgspec.Raw(json.dumps(params).encode()))


PATCH = {
    "type": "fileChange",
    "id": "call_1",
    "status": "inProgress",
    "changes": [
        {"path": "/w/a.py", "kind": {"type": "update", "move_path": "/w/b.py"}, "diff": "@@\n-x\n+y\n"},
        {"path": "/w/new.txt", "kind": {"type": "add"}, "diff": "hello\n"},
    ],
}
EXPECTED = (FileChange("/w/a.py", "update", "@@\n-x\n+y\n", "/w/b.py"), FileChange("/w/new.txt", "add", "hello\n"))


def test_an_item_still_in_the_queue_is_found_there() -> None:
    queue: Inbox[ThreadMessage] = Inbox()
    queue.put_nowait(_item_started({"type": "agentMessage", "id": "m", "text": ""}))
    queue.put_nowait(_item_started(PATCH))
    turn = _turn(queue)
    assert turn.file_changes("call_1") == EXPECTED
    assert turn.file_changes("call_2") == ()
    assert len(queue.queued()) == 2  # looked at, not taken


async def test_an_item_the_turn_has_read_is_remembered() -> None:
    queue: Inbox[ThreadMessage] = Inbox()
    queue.put_nowait(_item_started(PATCH))
    completed = {"threadId": "t", "turn": {"id": "u", "status": "completed"}}
    queue.put_nowait(Notification("turn/completed", msgspec.Raw(json.dumps(completed).encode())))
    turn = _turn(queue)
    assert [type(event).__name__ async for event in turn.events()] == ["ItemStarted", "TurnFinished"]
    assert queue.empty()
    assert turn.file_changes("call_1") == EXPECTED
