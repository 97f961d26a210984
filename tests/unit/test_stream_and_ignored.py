"""What a daemon client reports without parsing the history agrees with the full parse (chat and Responses)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claif_cod.engine.errors import InvalidRequest
from claif_cod.openai_compat.request import parse_chat_request, stream_and_ignored
from claif_cod.openai_compat.responses_request import parse_responses_request, responses_ignored

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
STRICT_CHAT_TOOL = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}, "strict": True}}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"temperature": 0.2, "seed": 3, "user": "u", "metadata": {"a": "b"}},
        {"response_format": {"type": "json_object"}, "top_p": 1},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
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


@pytest.mark.parametrize(
    "extra",
    [
        {"store": True, "stream": True, "stream_options": {"include_obfuscation": True}},
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {}, "strict": False, "description": "d"},
            }
        },
        {"messages": [{"role": "system", "content": "s", "name": "n"}, *MESSAGES]},
        {
            "messages": [
                *MESSAGES,
                {"role": "assistant", "content": None, "refusal": "r", "audio": {"id": "a"}},
                *MESSAGES,
            ]
        },
        {"messages": [*MESSAGES, {"role": "assistant", "function_call": {"name": "f", "arguments": ""}}, *MESSAGES]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "t", "prompt_cache_breakpoint": {}}]}]},
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}]}
            ]
        },
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "original"}}]}
            ]
        },
        {"tools": [CHAT_TOOL], "messages": [{"role": "user", "content": "named", "name": "alice"}]},
        {"messages": [*MESSAGES, {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}, *MESSAGES]},
    ],
)
def test_what_is_reported_of_the_messages_and_options_agrees(extra: dict[str, Any]) -> None:
    body = json.dumps({"model": "m", "messages": MESSAGES, **extra}).encode()
    parsed = parse_chat_request(body, default_model=None, strict=False)
    assert parsed.ignored  # (each of these reports something)
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
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
                {"role": "user", "content": "please"},
            ]
        },
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


ASSISTANT = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}
CALL = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
RESULT = {"type": "function_call_output", "call_id": "c", "output": "o"}
USER = {"role": "user", "content": "q"}


@pytest.mark.parametrize(
    ("extra", "reported"),
    [
        ({"reasoning": {"effort": "high", "mode": "pro"}}, ("reasoning.mode",)),
        ({"reasoning": {"context": "all_turns"}}, ("reasoning.context",)),
        (
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": {}, "strict": False}}},
            ("text.format.strict",),
        ),
        (
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": {}, "description": "d"}}},
            ("text.format.description",),
        ),
        ({"tools": [{**RESPONSES_TOOL, "defer_loading": True}]}, ("tools.defer_loading",)),
        ({"tools": [{**RESPONSES_TOOL, "allowed_callers": ["programmatic"]}]}, ("tools.allowed_callers",)),
        ({"tools": [{**RESPONSES_TOOL, "output_schema": {"type": "object"}}]}, ("tools.output_schema",)),
        ({"input": [USER, {**ASSISTANT, "phase": "final_answer"}, USER]}, ("input.message.phase",)),
        ({"input": [USER, {**CALL, "namespace": "n"}, RESULT]}, ("input.function_call.namespace",)),
        ({"input": [USER, {**CALL, "caller": {"type": "direct"}}, RESULT]}, ("input.function_call.caller",)),
        ({"input": [USER, CALL, {**RESULT, "name": "f"}]}, ("input.function_call_output.name",)),
        (
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "t", "prompt_cache_breakpoint": {}}]}
                ]
            },
            ("input.content.prompt_cache_breakpoint",),
        ),
        ({"input": [USER, ASSISTANT, USER], "tools": [RESPONSES_TOOL]}, ()),
    ],
)
def test_responses_fields_codex_lacks_are_reported(extra: dict[str, Any], reported: tuple[str, ...]) -> None:
    """Nested fields Codex has no place for are reported (and refused in strict mode), in the full parse
    and by a daemon client alike."""
    body = json.dumps({"model": "m", "input": TRANSCRIPT, **extra}).encode()
    assert parse_responses_request(body, default_model=None, strict=False).ignored == reported
    assert responses_ignored(body) == reported
    if reported:
        with pytest.raises(InvalidRequest, match="strict mode"):
            parse_responses_request(body, default_model=None, strict=True)


@pytest.mark.parametrize(
    ("conversation_input", "reported"),
    [
        # openai-agents sends every image with a detail; "detail" sends the report to the whole parse
        ([{"role": "user", "content": [{"type": "input_image", "image_url": PNG, "detail": "auto"}]}], ()),
        (
            [{"role": "user", "content": [{"type": "input_image", "image_url": PNG, "detail": "low"}]}],
            ("input_image.detail",),
        ),
        # results for the calls the conversation ends with, which only the daemon knows
        (
            [{**RESULT, "output": [{"type": "input_image", "image_url": PNG, "detail": "low"}]}],
            ("input_image.detail",),
        ),
    ],
)
def test_a_daemon_client_reports_a_conversations_request_from_its_own_input(
    conversation_input: list[dict[str, Any]], reported: tuple[str, ...]
) -> None:
    """A daemon client parses a request for its report without the conversation's items (the daemon
    has them): a request naming a conversation failed there with an AssertionError, before it was sent."""
    body = json.dumps({"model": "m", "conversation": "conv_1", "input": conversation_input}).encode()

    assert responses_ignored(body) == reported


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


def test_a_null_or_empty_value_asks_for_nothing_and_is_not_reported() -> None:
    """openai-agents sends ``include: []`` with every Responses request: reported, it failed every
    agent run in strict mode. A parameter passed as ``None`` reaches the wire as null."""
    chat = {"model": "m", "messages": MESSAGES, "temperature": None, "functions": [], "seed": None, "top_p": 1}
    body = json.dumps(chat).encode()
    assert parse_chat_request(body, default_model=None, strict=False).ignored == ("top_p",)
    assert stream_and_ignored(body) == (False, ("top_p",))
    responses = {"model": "m", "input": "hi", "include": [], "service_tier": None, "max_output_tokens": 99}
    body = json.dumps(responses).encode()
    assert parse_responses_request(body, default_model=None, strict=False).ignored == ("max_output_tokens",)
    assert responses_ignored(body) == ("max_output_tokens",)
    spaced = b'{"model": "m", "input": "hi", "include": [ ], "prompt": null}'
    assert parse_responses_request(spaced, default_model=None, strict=True).ignored == ()
    search = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "web_search_options": {}}'
    assert parse_chat_request(search, default_model=None, strict=False).ignored == ("web_search_options",)
