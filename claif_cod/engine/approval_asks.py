"""Codex's approval requests, put to the approval handler of the turn that asks.

A handler may wait long (an editor waiting for its user's answer). When the turn ends first (its
request was cancelled, timed out or interrupted), the ask is given up: the handler's task is
cancelled, so a prompt it opened can close, and Codex, which no longer waits, is told "decline".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine import wire
from claif_cod.engine.approvals import ApprovalHandler, ApprovalRequest, Decision, FileChange, checked_decision
from claif_cod.engine.server_requests import RpcErrorReply

log = get_logger("claif_cod.engine")


class ApprovalAsks:
    def __init__(
        self,
        handler_of: Callable[[str], ApprovalHandler],
        file_changes: Callable[[str, str], tuple[FileChange, ...]],
    ) -> None:
        self._handler_of = handler_of
        """The handler of the turn running on a thread (``decline_all`` when none runs)."""
        self._file_changes = file_changes
        """A thread's turn's changes of a ``fileChange`` item, by item id."""
        self._asking: dict[str, set[asyncio.Future[Decision]]] = {}

    async def answer(self, method: str, params: msgspec.Raw) -> wire.ApprovalDecisionResult:
        request = self._request(method, params)
        try:
            asking = asyncio.ensure_future(self._handler_of(request.thread_id)(request))
        except Exception:  # a handler that is not async, or fails before it awaits anything
            log.exception("engine.approval_handler_failed")
            return wire.ApprovalDecisionResult(decision="decline")
        asks = self._asking.setdefault(request.thread_id, set())
        asks.add(asking)
        try:
            await asyncio.wait({asking})
        finally:
            asking.cancel()  # (done: nothing) the process went: nobody needs the answer
            asks.discard(asking)
            given_up = self._asking.get(request.thread_id) is not asks
            if not asks and not given_up:
                del self._asking[request.thread_id]
        # A handler that took its cancellation for an answer is not asked about a turn that ended.
        return wire.ApprovalDecisionResult(decision="decline" if given_up else _decision(asking))

    def give_up(self, thread_id: str) -> None:
        """The thread's turn ended: its asks still waiting are cancelled (and declined)."""
        for asking in self._asking.pop(thread_id, ()):
            asking.cancel()

    def _request(self, method: str, params: msgspec.Raw) -> ApprovalRequest:
        if method == "item/commandExecution/requestApproval":
            cmd = msgspec.json.decode(params, type=wire.CommandApprovalParams)
            return ApprovalRequest("command", cmd.thread_id, cmd.turn_id, cmd.item_id, cmd.command, cmd.cwd, cmd.reason)
        if method == "item/fileChange/requestApproval":
            fc = msgspec.json.decode(params, type=wire.FileChangeApprovalParams)
            return ApprovalRequest(
                "file_change",
                fc.thread_id,
                fc.turn_id,
                fc.item_id,
                reason=fc.reason,
                changes=self._file_changes(fc.thread_id, fc.item_id),
                grant_root=fc.grant_root,
            )
        raise RpcErrorReply(-32601, f"claif_cod does not handle {method}")


def _decision(asking: asyncio.Future[Decision]) -> Decision:
    if asking.cancelled():
        return "decline"
    error = asking.exception()
    if error is not None:
        log.error("engine.approval_handler_failed", exc_info=error)
        return "decline"
    return checked_decision(asking.result())
