"""What a daemon client reports without parsing the history agrees with the full parse (chat and Responses)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claif_cod.openai_compat.request import parse_chat_request, stream_and_ignored
from claif_cod.openai_compat.responses_request import parse_responses_request, responses_ignored

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
STRICT_CHAT_TOOL = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}, "strict": True}}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"temperature": 0.2, "seed": 3, "user": "u", "metadata": {"a": "b"}},
        {"response_format": {"type": "json_object"}, "top_p": 1},
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
        {"brand_new_parameter": [1, 2], "stream": False},
        {"tools": [CHAT_TOOL], "tool_choice": "required"},
        {"tools": [STRICT_CHAT_TOOL], "parallel_tool_calls": False},
        {"tools": [CHAT_TOOL], "tool_choice": "none", "parallel_tool_calls": False},
        {"tools": [CHAT_TOOL], "tool_choice": {"type": "function", "function": {"name": "f"}}, "builtin_tools": False},
    ],
)
def test_agrees_with_the_full_parse(extra: dict[str, Any]) -> None:
    body = json.dumps({"model": "m", "messages": MESSAGES, **extra}).encode()
    parsed = parse_chat_request(body, default_model=None, strict=False)
    assert stream_and_ignored(body) == (parsed.request.stream, parsed.ignored)


def test_a_body_that_is_not_json_is_left_to_the_daemon() -> None:
    assert stream_and_ignored(b"{nope") == (False, ())


def test_a_request_the_daemon_will_refuse_reports_nothing() -> None:
    body = json.dumps({"model": "m", "messages": MESSAGES, "tools": [{"type": "code_interpreter"}]}).encode()
    assert stream_and_ignored(body) == (False, ())


RESPONSES_TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}
TRANSCRIPT = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi"},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": "42"},
    {"role": "user", "content": [{"type": "input_text", "text": "and now?"}]},
]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"input": "just text"},
        {"stream": True, "temperature": 0.2, "user": "u", "truncation": "auto", "metadata": {"a": "b"}},
        {"text": {"format": {"type": "json_object"}, "verbosity": "low"}},
        {"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}},
        {"reasoning": {"effort": "low", "generate_summary": "auto"}},
        {"input": [{"type": "reasoning", "id": "r1", "summary": []}, *TRANSCRIPT]},
        {"tools": [RESPONSES_TOOL], "tool_choice": "required", "parallel_tool_calls": False},
        {"tools": [{**RESPONSES_TOOL, "strict": True}], "tool_choice": "none"},
        {"brand_new_parameter": 1, "include": ["reasoning.encrypted_content"]},
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    ],
                }
            ]
        },
    ],
)
def test_responses_agree_with_the_full_parse(extra: dict[str, Any]) -> None:
    body = json.dumps({"model": "m", "input": TRANSCRIPT, **extra}).encode()
    parsed = parse_responses_request(body, default_model=None, strict=False)
    assert responses_ignored(body) == parsed.ignored


@pytest.mark.parametrize(
    "body",
    [
        b"{nope",
        json.dumps({"input": TRANSCRIPT, "tools": [{"type": "web_search"}]}).encode(),
        json.dumps({"input": TRANSCRIPT, "text": {"format": {"type": "json_schema"}}, "top_p": 1}).encode(),
    ],
)
def test_a_responses_request_the_daemon_will_refuse_reports_nothing(body: bytes) -> None:
    assert responses_ignored(body) == ()
