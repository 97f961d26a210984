"""What a daemon client reports without parsing the messages agrees with the full parse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claif_cod.openai_compat.request import parse_chat_request, stream_and_ignored

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"temperature": 0.2, "seed": 3, "user": "u", "metadata": {"a": "b"}},
        {"response_format": {"type": "json_object"}, "top_p": 1},
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
        {"brand_new_parameter": [1, 2], "stream": False},
    ],
)
def test_agrees_with_the_full_parse(extra: dict[str, Any]) -> None:
    body = json.dumps({"model": "m", "messages": MESSAGES, **extra}).encode()
    parsed = parse_chat_request(body, default_model=None, strict=False)
    assert stream_and_ignored(body) == (parsed.request.stream, parsed.ignored)


def test_a_body_that_is_not_json_is_left_to_the_daemon() -> None:
    assert stream_and_ignored(b"{nope") == (False, ())
