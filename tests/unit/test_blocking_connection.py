"""A caller's blocking connection to the daemon, against the other end of a socket pair."""

from __future__ import annotations

import concurrent.futures
import socket
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from claif_cod.engine.approvals import ApprovalRequest, Decision
from claif_cod.openai_compat.errors import APIFailure
from claif_cod.protocol import (
    ApprovalRequestedNotification,
    ApprovalRequestedParams,
    ApprovalRespondRequest,
    CancelNotification,
    ChatCompletionsChunkNotification,
    ChatCompletionsChunkParams,
    ErrorResponse,
    FrameDecoder,
    InvalidRequest,
    Response,
    decode,
    encode,
    encode_frame,
)
from claif_cod.transport.blocking_connection import BlockingConnection, ConnectionLost
from claif_cod.transport.socket_reads import Done, read_next


@pytest.fixture
def pair() -> Iterator[tuple[BlockingConnection, socket.socket]]:
    ours, theirs = socket.socketpair()
    conn = BlockingConnection(ours)
    yield conn, theirs
    conn.close()
    theirs.close()


def sent(sock: socket.socket, *messages: object) -> None:
    sock.sendall(b"".join(encode_frame(encode(m)) for m in messages))  # type: ignore[arg-type]


def received(sock: socket.socket) -> list[object]:
    sock.settimeout(5)
    return [decode(body) for body in FrameDecoder().feed(sock.recv(65536))]


def chunk(request_id: int, text: str) -> ChatCompletionsChunkNotification:
    return ChatCompletionsChunkNotification(
        params=ChatCompletionsChunkParams(request_id=request_id, chunk=msgspec.Raw(msgspec.json.encode(text)))
    )


def test_a_requests_items_then_its_reply_others_skipped(pair: tuple[BlockingConnection, socket.socket]) -> None:
    conn, daemon = pair
    sent(daemon, chunk(9, "not ours"), chunk(1, "a"), Response(id=8, result=None), Response(id=1, result="done"))
    assert read_next(conn, 1, None) == msgspec.Raw(b'"a"')
    assert read_next(conn, 1, None) == Done(msgspec.Raw(b'"done"'))


def test_an_error_reply_is_the_requests_failure_and_leaves_the_connection_usable(
    pair: tuple[BlockingConnection, socket.socket],
) -> None:
    conn, daemon = pair
    sent(daemon, ErrorResponse(id=1, error=InvalidRequest("no").to_error()))
    with pytest.raises(APIFailure):
        read_next(conn, 1, None)
    assert not conn.broken and conn.idle()


def test_an_error_about_the_connection_fails_the_request_and_the_connection(
    pair: tuple[BlockingConnection, socket.socket],
) -> None:
    conn, daemon = pair
    sent(daemon, ErrorResponse(id=None, error=InvalidRequest("frame too large").to_error()))
    with pytest.raises(APIFailure, match="frame too large"):
        read_next(conn, 1, None)
    assert not conn.idle()


def _accept(request: ApprovalRequest) -> concurrent.futures.Future[Decision]:
    """A handler started on the engine loop that has decided already."""
    assert (request.kind, request.command, request.item_id) == ("command", "touch x", "a1")
    decided: concurrent.futures.Future[Decision] = concurrent.futures.Future()
    decided.set_result("accept")
    return decided


def _fail(_request: ApprovalRequest) -> concurrent.futures.Future[Decision]:
    failed: concurrent.futures.Future[Decision] = concurrent.futures.Future()
    failed.set_exception(RuntimeError("the handler failed"))
    return failed


@pytest.mark.parametrize(
    ("kind", "approve", "decision"),
    [
        ("command", None, "decline"),
        ("command", _accept, "accept"),
        ("command", _fail, "decline"),  # logged, as in-process
        ("permissions", _accept, "decline"),  # a kind the handler is not asked about
    ],
)
def test_approvals_are_decided_by_the_handler_or_declined(
    pair: tuple[BlockingConnection, socket.socket], kind: Any, approve: Any, decision: str
) -> None:
    conn, daemon = pair
    params = ApprovalRequestedParams(
        approval_id="a1", request_id=1, kind=kind, thread_id="t", turn_id="u", deadline_s=5.0, command="touch x"
    )
    sent(daemon, ApprovalRequestedNotification(params=params), Response(id=1, result=None))
    assert isinstance(read_next(conn, 1, approve), Done)
    [answer] = received(daemon)
    assert isinstance(answer, ApprovalRespondRequest)
    assert (answer.params.approval_id, answer.params.decision) == ("a1", decision)


def test_a_handler_still_deciding_when_its_request_ends_is_cancelled_and_answers_nothing(
    pair: tuple[BlockingConnection, socket.socket],
) -> None:
    """The caller's thread reads on while the handler decides: the request's end (its timeout, here
    its reply) reaches it, and the handler is let go."""
    conn, daemon = pair
    deciding: concurrent.futures.Future[Decision] = concurrent.futures.Future()
    params = ApprovalRequestedParams(
        approval_id="a1", request_id=1, kind="command", thread_id="t", turn_id="u", deadline_s=5.0, command="x"
    )
    sent(daemon, ApprovalRequestedNotification(params=params), Response(id=1, result=None))
    assert isinstance(read_next(conn, 1, lambda _request: deciding), Done)
    assert deciding.cancelled() and not conn.asking
    daemon.setblocking(False)
    with pytest.raises(BlockingIOError):
        daemon.recv(65536)  # no approval.respond was sent for it


def test_a_malformed_frame_or_a_closed_socket_loses_the_connection(
    pair: tuple[BlockingConnection, socket.socket],
) -> None:
    conn, daemon = pair
    daemon.sendall(b"\x00\x00\x00\x05nope!")
    with pytest.raises(ConnectionLost):
        read_next(conn, 1, None)
    assert conn.broken


def test_idle_drops_late_replies_and_notices_a_closed_socket(pair: tuple[BlockingConnection, socket.socket]) -> None:
    conn, daemon = pair
    sent(daemon, Response(id=7, result=None))  # the reply to an approval answer, after the request ended
    assert conn.idle()
    sent(daemon, Response(id=2, result="mine"))
    assert read_next(conn, 2, None) == Done(msgspec.Raw(b'"mine"'))
    daemon.close()
    assert not conn.idle()


def test_cancel_tells_the_daemon(pair: tuple[BlockingConnection, socket.socket]) -> None:
    conn, daemon = pair
    conn.cancel(3)
    [cancel] = received(daemon)
    assert isinstance(cancel, CancelNotification) and cancel.params.id == 3
