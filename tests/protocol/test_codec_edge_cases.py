"""Error-spec corners of the codec: what protocol.md promises for malformed bodies, with the id kept."""

from __future__ import annotations

import pytest

from claif_cod.protocol import ErrorCode, ProtocolError, decode

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "request_id", "says"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"daemon.status","params":{},"x":"\xff"}', 1, "UTF-8"),
        (b'{"jsonrpc":"2.0","id":2,"method":"daemon.status","params":{"ignored":"\xc3("}}', 2, "UTF-8"),
        (b'{"jsonrpc":"2.0","id":3,"method":"session.close","params":{"session_id":"\\ud800"}}', 3, "surrogate"),
        (b'{"jsonrpc":"2.0","id":"s","method":"session.close","params":{"session_id":"a\\udc00"}}', "s", "surrogate"),
        (b'{"jsonrpc":"2.0","id":7,"method":"daemon.status","params":' + DEEP + b"}", 7, "depth"),
        (b'{"jsonrpc":"2.0","method":"daemon.status","params":' + DEEP + b',"id":"a\\"b"}', 'a"b', "depth"),
    ],
    ids=["utf8-ignored-member", "utf8-ignored-param", "lone-high", "lone-low", "deep-id-first", "deep-id-last"],
)
def test_malformed_bodies_are_parse_errors_that_keep_the_id(body: bytes, request_id: object, says: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(body)
    error = info.value.to_error()
    assert error.code == ErrorCode.PARSE_ERROR, error
    assert info.value.request_id == request_id
    assert says in error.message, error.message


def test_a_surrogate_pair_is_a_character() -> None:
    message = decode(b'{"jsonrpc":"2.0","id":1,"method":"session.close","params":{"session_id":"\\ud83d\\ude00"}}')
    assert message.params.session_id == "\U0001f600"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"[1,", ErrorCode.PARSE_ERROR), (b"[[[[", ErrorCode.PARSE_ERROR), (b"[1, 2]", ErrorCode.INVALID_REQUEST)],
)
def test_a_body_opening_an_array_is_judged_on_its_syntax_first(body: bytes, code: ErrorCode) -> None:
    """Broken JSON was INVALID_REQUEST ("Expected `object`, got `array`") when it began with ``[``:
    msgspec refuses the array as it opens, before reading on. protocol.md: -32700 for a body that is
    not JSON, -32600 for JSON that is not a message."""
    with pytest.raises(ProtocolError) as info:
        decode(body)
    assert info.value.to_error().code == code
