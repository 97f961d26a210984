"""Every request gets exactly one reply, and it fits a frame: an id too large to echo gets an error with
``id`` null, then the connection is closed, and nobody waits forever."""

from __future__ import annotations

import json

import pytest
from test_decoder_robustness import DaemonProcess, RawConnection, daemon, still_serves  # noqa: F401 (a fixture)

from claif_cod.protocol import DEFAULT_MAX_FRAME, ErrorCode, ErrorResponse

pytestmark = pytest.mark.timeout(60)


def filling_a_frame(method: str, params: dict[str, object]) -> bytes:
    """A request exactly one frame long, its id taking all the room: no error reply could echo that id."""
    empty = json.dumps({"jsonrpc": "2.0", "id": "", "method": method, "params": params}).encode()
    request_id = "i" * (DEFAULT_MAX_FRAME - len(empty))
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("daemon.status", {}),  # valid: must not run, since its reply could not say which request it answers
        ("no.such.method", {}),  # the error reply itself would not fit
        ("session.close", {"session_id": 7}),  # invalid params, same
    ],
)
def test_a_request_whose_id_fills_a_frame_gets_one_error_with_a_null_id_then_eof(
    daemon: DaemonProcess,  # noqa: F811
    method: str,
    params: dict[str, object],
) -> None:
    conn = RawConnection(daemon.socket, timeout=30)
    try:
        conn.hello()
        conn.send(filling_a_frame(method, params))
        reply = conn.receive()
        assert isinstance(reply, ErrorResponse), reply
        assert reply.id is None and reply.error.code == ErrorCode.INVALID_REQUEST, reply
        assert "too large" in reply.error.message
        assert conn.receive() is None  # then the connection ends: exactly one reply
    finally:
        conn.close()
    still_serves(daemon)
    log = daemon.log.read_text(errors="replace")
    assert "Traceback" not in log and "never retrieved" not in log, log[-2000:]
    assert len(log) < 1 << 20, f"{len(log)} bytes of log"
