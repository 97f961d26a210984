"""A client skips a notification it cannot read, a method or a value a newer daemon added
(docs/protocol.md, "Versioning": those need no new protocol version), and its request goes on; a
reply it cannot read still loses the connection, whose state is then in doubt."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import msgspec
import pytest

from claif_cod.openai_compat.errors import APIFailure
from claif_cod.protocol import (
    ApprovalRequestedNotification,
    ApprovalRequestedParams,
    ChatCompletionsChunkNotification,
    ChatCompletionsChunkParams,
    ModelsListParams,
    ModelsListRequest,
    Response,
    decode_as_client,
    encode,
    encode_frame,
)
from claif_cod.transport.blocking_connection import BlockingConnection, ConnectionLost
from claif_cod.transport.daemon_client import DaemonConnection
from claif_cod.transport.socket_reads import Done, read_next

NEW_METHOD = b'{"jsonrpc":"2.0","method":"daemon.weather","params":{"sky":"clear"}}'
APPROVAL = ApprovalRequestedNotification(
    params=ApprovalRequestedParams(
        approval_id="a1", request_id=1, kind="other", thread_id="t", turn_id="u", deadline_s=5.0
    )
)
NEW_VALUE = encode(APPROVAL).replace(b'"kind":"other"', b'"kind":"network"')
UNREADABLE_REPLY = b'{"jsonrpc":"2.0","id":1}'  # neither a result nor an error


def chunk(text: str) -> bytes:
    params = ChatCompletionsChunkParams(request_id=1, chunk=msgspec.Raw(msgspec.json.encode(text)))
    return encode(ChatCompletionsChunkNotification(params=params))


def frames(*bodies: bytes) -> bytes:
    return b"".join(encode_frame(body) for body in bodies)


def test_the_newer_notifications_are_skipped_and_anything_else_unreadable_raises() -> None:
    assert b'"kind":"network"' in NEW_VALUE
    assert decode_as_client(NEW_METHOD) is None
    assert decode_as_client(NEW_VALUE) is None
    assert decode_as_client(encode(APPROVAL)) == APPROVAL
    with pytest.raises(Exception, match="result"):
        decode_as_client(UNREADABLE_REPLY)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_a_blocking_connection_skips_them_and_reads_on(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, daemon = pair
    conn = BlockingConnection(ours)
    daemon.sendall(frames(NEW_METHOD, chunk("a"), NEW_VALUE, encode(Response(id=1, result="done"))))
    assert read_next(conn, 1, None) == msgspec.Raw(b'"a"')
    assert read_next(conn, 1, None) == Done(msgspec.Raw(b'"done"'))
    assert not conn.broken
    daemon.sendall(frames(UNREADABLE_REPLY))
    with pytest.raises(ConnectionLost):
        read_next(conn, 1, None)


def test_the_engine_loops_connection_skips_them_and_reads_on(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, daemon = pair

    async def scenario() -> None:
        conn = DaemonConnection(*await asyncio.open_unix_connection(sock=ours))
        daemon.sendall(frames(NEW_METHOD, NEW_VALUE, encode(Response(id=1, result="done"))))
        assert await conn.call(ModelsListRequest(id=conn.next_id(), params=ModelsListParams())) == msgspec.Raw(
            b'"done"'
        )
        assert conn.alive
        daemon.sendall(frames(UNREADABLE_REPLY))
        with pytest.raises(APIFailure):
            await conn.call(ModelsListRequest(id=conn.next_id(), params=ModelsListParams()))
        assert not conn.alive
        await conn.close()

    asyncio.run(scenario())
