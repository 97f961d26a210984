"""A body that is not JSON is refused saying why, where msgspec's own words mislead: a lone surrogate
escape, which Python's ``json.dumps`` writes for a string holding one (curl, requests, an older
openai over httpx), was "Input data was truncated", as an empty body was; a body that begins with a
byte order mark (Windows tools write one) or is UTF-16 was "invalid character (byte 0)"."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable

import pytest

from claif_cod.engine.errors import InvalidRequest
from claif_cod.openai_compat.request import parse_chat_request
from claif_cod.openai_compat.responses_compact_request import read_compact
from claif_cod.openai_compat.responses_request import parse_responses_request
from claif_cod.protocol import ErrorCode, ProtocolError, decode

CHAT = json.dumps({"model": "m", "messages": [{"role": "user", "content": "a\ud800b"}]}).encode()
RESPONSES = json.dumps({"model": "m", "input": "hi", "user": "\udc80"}).encode()
OK = b'{"model": "m", "input": "hi"}'

PARSERS: dict[str, Callable[[bytes], object]] = {
    "chat": lambda body: parse_chat_request(body, default_model=None, strict=False),
    "responses": lambda body: parse_responses_request(body, default_model=None, strict=False),
    "compact": read_compact,
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (CHAT, "invalid \\u escape: a lone UTF-16 surrogate is not a character"),
        (RESPONSES, "invalid \\u escape: a lone UTF-16 surrogate is not a character"),
        (b"", "it is empty"),
        (b" \r\n", "it is empty"),
        (codecs.BOM_UTF8 + OK, "it begins with a byte order mark (U+FEFF), which JSON text must not"),
        (OK.decode().encode("utf-16"), "it is UTF-16 text (JSON is sent as UTF-8)"),
    ],
    ids=["lone-high-surrogate", "lone-low-surrogate", "empty", "blank", "utf8-bom", "utf16"],
)
def test_a_body_that_is_not_json_is_refused_saying_why(parser: str, body: bytes, says: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        PARSERS[parser](body)
    assert info.value.message == f"request body is not valid JSON: {says}"


def test_a_socket_frame_with_a_lone_surrogate_says_so_too() -> None:
    frame = b'{"jsonrpc":"2.0","id":1,"method":"session.close","params":{"session_id":"\\ud800x"}}'
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    error = info.value.to_error()
    assert error.code == ErrorCode.PARSE_ERROR
    assert error.message == "invalid \\u escape: a lone UTF-16 surrogate is not a character"
