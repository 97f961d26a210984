"""Reading one request's messages off a caller's own blocking connection to claif-codd: its streamed
items and reply, the approvals the daemon asks for on the way, and why the connection was lost.
(:mod:`claif_cod.transport.direct_daemon` sends the requests and hands the items to openai.)"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
from collections.abc import Callable

import msgspec

from claif_cod._log import get_logger
from claif_cod.engine.approvals import ApprovalRequest, Decision, checked_decision
from claif_cod.openai_compat.options import python_warning
from claif_cod.protocol import (
    ApprovalRequestedNotification,
    ChatCompletionsChunkNotification,
    ErrorResponse,
    Response,
    ResponsesEventNotification,
    WarningNotification,
)
from claif_cod.transport.blocking_connection import BlockingConnection, ConnectionLost
from claif_cod.transport.daemon_client import ClientClosed, approval_request
from claif_cod.transport.wire_errors import error_to_failure

log = get_logger("claif_cod.direct_daemon")


class Done(msgspec.Struct):
    """The request's reply: its result."""

    result: msgspec.Raw


Approve = Callable[[ApprovalRequest], concurrent.futures.Future[Decision]]
"""A sync client's approval handler, started (on the engine loop) for a decision to come: the caller's
thread reads on meanwhile, so that the request's deadline and end still reach it."""


def _ask(conn: BlockingConnection, approve: Approve | None, message: ApprovalRequestedNotification) -> None:
    """The daemon is told the handler's decision once it has one; declined at once without a handler."""
    request = approval_request(message.params)
    if approve is None or request is None:
        conn.answer_approval(message, "decline")
        return
    asking = approve(request)
    conn.asking.add(asking)
    asking.add_done_callback(functools.partial(_answer, conn, message))


def _answer(
    conn: BlockingConnection, message: ApprovalRequestedNotification, asking: concurrent.futures.Future[Decision]
) -> None:
    conn.asking.discard(asking)
    if asking.cancelled():  # its request ended first: nobody needs the answer
        return
    if asking.exception() is not None:
        log.error("direct_daemon.approval_handler_failed", exc_info=asking.exception())  # as in-process: declined
    with contextlib.suppress(ConnectionLost):
        conn.answer_approval(
            message, "decline" if asking.exception() is not None else checked_decision(asking.result())
        )


def why_lost(conn: BlockingConnection, lost: ConnectionLost) -> ConnectionLost | ClientClosed:
    """Why a request in flight on ``conn`` failed: woken by its client's ``close()`` from another
    thread, it was not claif-codd that closed the connection (as the engine loop's connection says)."""
    return ClientClosed() if conn.woken else lost


def read_next(conn: BlockingConnection, request_id: int, approve: Approve | None) -> msgspec.Raw | Done:
    """The request's next streamed item, or its reply; its failure raised as :class:`APIFailure`.
    Once it ends, its approval handlers still asking are cancelled."""
    try:
        item = _next_item(conn, request_id, approve)
    except BaseException:
        conn.stop_asking()
        raise
    if isinstance(item, Done):
        conn.stop_asking()
    return item


def _next_item(conn: BlockingConnection, request_id: int, approve: Approve | None) -> msgspec.Raw | Done:
    while True:
        message = conn.receive()
        if isinstance(message, ChatCompletionsChunkNotification):
            if message.params.request_id == request_id:
                return message.params.chunk
        elif isinstance(message, ResponsesEventNotification):
            if message.params.request_id == request_id:
                return message.params.event
        elif isinstance(message, Response):
            if message.id == request_id:
                return Done(message.result)
        elif isinstance(message, ErrorResponse):
            if message.id is None:  # about the connection, which the daemon now closes
                conn.broken = True
            if message.id in (request_id, None):
                raise error_to_failure(message.error)
        elif isinstance(message, ApprovalRequestedNotification):
            _ask(conn, approve, message)
        elif isinstance(message, WarningNotification):
            python_warning(message.params.message)
