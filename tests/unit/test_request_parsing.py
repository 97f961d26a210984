"""parse_chat_request / build_conversation: what an OpenAI request body becomes for Codex."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claif_cod.engine.conversations import Conversation, Message
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools import ToolCall, ToolResult, ToolSpec
from claif_cod.openai_compat.chat_history import ChatMessage, HistoryMemo, build_conversation
from claif_cod.openai_compat.request import (
    HONOURED,
    IGNORED,
    MAX_N,
    NO_EFFECT,
    ChatRequest,
    ParsedRequest,
    parse_chat_request,
    stream_and_ignored,
)
from claif_cod.transport.backend import wants_stream


def body(**fields: Any) -> bytes:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return json.dumps(fields).encode()


def parse(strict: bool = False, default_model: str | None = "default-model", **fields: Any) -> ParsedRequest:
    return parse_chat_request(body(**fields), default_model=default_model, strict=strict)


def rejected(strict: bool = False, **fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse(strict=strict, **fields)
    return info.value


def msg(role: str, content: Any = "x", **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def test_null_is_openais_default_for_every_optional_parameter_acted_on() -> None:
    """openai's client sends a parameter given as None as null, which OpenAI takes as its default:
    ``n`` and ``stream`` were refused as of the wrong type."""
    parsed = parse(**{key: None for key in HONOURED - {"messages"}})
    assert (parsed.request.choices, parsed.request.stream, parsed.ignored) == (1, None, ())
    assert wants_stream(body(stream=None)) is False
    assert stream_and_ignored(body(stream=None, n=None)) == (False, ())


# --- roles --------------------------------------------------------------------------------


def test_single_user_message_is_the_prompt() -> None:
    parsed = parse(messages=[msg("user", "hello")])
    assert parsed.conversation == Conversation(instructions=None, history=(), prompt="hello")


def test_system_and_developer_messages_become_instructions_joined_in_order() -> None:
    parsed = parse(
        messages=[
            msg("system", "one"),
            msg("user", "u1"),
            msg("developer", "two"),
            msg("assistant", "a1"),
            msg("system", "three"),
            msg("user", "u2"),
        ]
    )
    assert parsed.conversation.instructions == "one\n\ntwo\n\nthree"
    assert parsed.conversation.history == (Message("user", "u1"), Message("assistant", "a1"))
    assert parsed.conversation.prompt == "u2"


def test_user_assistant_history_keeps_order_and_roles() -> None:
    messages = [msg("user", "q1"), msg("assistant", "r1"), msg("user", "q2"), msg("assistant", "r2"), msg("user", "q3")]
    conversation = parse(messages=messages).conversation
    assert conversation.instructions is None
    assert conversation.history == (
        Message("user", "q1"),
        Message("assistant", "r1"),
        Message("user", "q2"),
        Message("assistant", "r2"),
    )
    assert conversation.prompt == "q3"


def test_trailing_system_message_still_counts_as_instructions() -> None:
    conversation = parse(messages=[msg("user", "q"), msg("system", "be brief")]).conversation
    assert conversation.prompt == "q"
    assert conversation.instructions == "be brief"


def test_instructions_alone_are_a_turn_without_new_input() -> None:
    """OpenAI answers system (or developer) messages alone: a whole prompt sent as the system message."""
    conversation = parse(messages=[msg("system", "s"), msg("developer", "d")]).conversation
    assert (conversation.instructions, conversation.history, conversation.prompt) == ("s\n\nd", (), None)


@pytest.mark.parametrize(
    "messages", [[msg("user", "q"), msg("assistant", "a")], [msg("developer", "s"), msg("assistant", "a")]]
)
def test_messages_ending_with_the_assistant_are_a_turn_without_new_input(messages: list[dict[str, Any]]) -> None:
    """As OpenAI's chat, which answers after the assistant's own message (langgraph's agent asks so
    for its structured answer): the whole conversation is history, the turn has no user message."""
    conversation = parse(messages=messages).conversation
    assert conversation.prompt is None and conversation.pending_results() == ()
    assert conversation.history[-1] == Message("assistant", "a")


def test_empty_messages_are_rejected_in_openais_words() -> None:
    error = rejected(messages=[])
    assert (error.param, error.code) == ("messages", "empty_array")
    assert error.message == (
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
    )


def test_an_unknown_role_is_openais_invalid_value_naming_the_roles_it_takes() -> None:
    error = rejected(messages=[msg("user", "q"), msg("critic", "result"), msg("user", "again")])
    assert (error.param, error.code) == ("messages[1].role", "invalid_value")
    assert error.message == (
        "Invalid value: 'critic'. Supported values are: "
        "'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
    )


def test_the_deprecated_function_role_is_refused_pointing_to_tool_messages() -> None:
    error = rejected(messages=[msg("user", "q"), msg("function", "result"), msg("user", "again")])
    assert error.param == "messages[1].role"
    assert error.message == "messages[1].role: role 'function' is not supported (a tool's result is a 'tool' message)"


def test_a_tool_message_needs_its_call_id() -> None:
    error = rejected(messages=[msg("user", "q"), msg("tool", "result"), msg("user", "again")])
    assert error.param == "messages[1]"
    assert "tool_call_id" in error.message


def test_tool_calls_and_results_become_history_items() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    messages = [msg("user", "q"), msg("assistant", None, tool_calls=[call]), msg("tool", "42", tool_call_id="c1")]
    conversation = parse(messages=messages).conversation
    assert conversation.prompt is None  # the turn answers the results
    assert conversation.history == (Message("user", "q"), ToolCall("c1", "f", '{"a": 1}'), ToolResult("c1", "42"))
    assert conversation.pending_results() == (ToolResult("c1", "42"),)
    with_text = [
        msg("user", "q"),
        msg("assistant", "let me look", tool_calls=[call]),
        msg("tool", "42", tool_call_id="c1"),
        msg("user", "and?"),
    ]
    conversation = parse(messages=with_text).conversation
    assert conversation.history[1:3] == (Message("assistant", "let me look"), ToolCall("c1", "f", '{"a": 1}'))
    assert conversation.prompt == "and?"
    assert conversation.pending_results() == ()


# --- tools -----------------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {"name": "weather", "description": "d", "parameters": {"type": "object", "properties": {}}},
}


def test_function_tools_become_thread_tools() -> None:
    parsed = parse(tools=[WEATHER])
    assert parsed.tools.specs == (ToolSpec("weather", "d", {"type": "object", "properties": {}}),)
    assert parsed.tools.builtin is True
    assert parsed.ignored == ()


def test_tool_choice_none_offers_no_tools() -> None:
    assert parse(tools=[WEATHER], tool_choice="none").tools.specs == ()
    assert parse(tools=[WEATHER], tool_choice="auto").tools.specs != ()


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "weather"}}])
def test_forced_tool_choice_is_reported_and_strict_rejects_it(choice: Any) -> None:
    assert parse(tools=[WEATHER], tool_choice=choice).ignored == ("tool_choice",)
    assert rejected(strict=True, tools=[WEATHER], tool_choice=choice).param == "tool_choice"


def test_sequential_tool_calls_and_strict_arguments_are_reported() -> None:
    strict_tool = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    assert parse(tools=[strict_tool], parallel_tool_calls=False).ignored == (
        "parallel_tool_calls",
        "tools.function.strict",
    )
    assert parse(tools=[WEATHER], parallel_tool_calls=True).ignored == ()


def test_builtin_tools_false_asks_for_a_tools_only_thread() -> None:
    assert parse(tools=[WEATHER], builtin_tools=False).tools.builtin is False


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        ({"tools": [WEATHER], "n": 2}, "n"),
        ({"tools": [WEATHER], "session_id": "s"}, "tools"),
        ({"builtin_tools": False, "session_id": "s"}, "builtin_tools"),
        ({"tool_timeout": 0}, "tool_timeout"),
    ],
)
def test_tools_that_cannot_be_offered_are_rejected(fields: dict[str, Any], param: str) -> None:
    assert rejected(**fields).param == param


def named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {**WEATHER["function"], "name": name}}


@pytest.mark.parametrize(
    ("fields", "param", "says", "code"),
    [
        (
            {"tools": [WEATHER], "tool_choice": "any"},
            "tool_choice",
            "Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'.",
            "invalid_value",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "forecast"}}},
            "function_call",
            "Invalid value for 'function_call': "
            "no function named 'forecast' was specified in the 'functions' parameter.",
            None,
        ),
        *(
            (
                {param: value},
                param,
                f"Invalid value for '{param}': '{param}' is only allowed when 'tools' are specified.",
                None,
            )
            for param, value in [
                ("tool_choice", "none"),
                ("tool_choice", {"type": "function", "function": {"name": "weather"}}),
                ("parallel_tool_calls", False),
            ]
        ),
        (
            {"tools": [], "tool_choice": "auto"},
            "tools",
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "empty_array",
        ),
        (
            {"tools": [named(f"t{index}") for index in range(129)]},
            "tools",
            "Invalid 'tools': array too long. "
            "Expected an array with maximum length 128, but got an array with length 129 instead.",
            "array_above_max_length",
        ),
        (
            {"tools": [named("get weather")]},
            "tools[0].function.name",
            "Invalid 'tools[0].function.name': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
            "invalid_value",
        ),
        (
            {"tools": [WEATHER, named("x" * 65)]},
            "tools[1].function.name",
            "Invalid 'tools[1].function.name': string too long. "
            "Expected a string with maximum length 64, but got a string with length 65 instead.",
            "string_above_max_length",
        ),
        (
            {"tools": [named("")]},
            "tools[0].function.name",
            "Invalid 'tools[0].function.name': empty string. "
            "Expected a string with minimum length 1, but got an empty string instead.",
            "empty_string",
        ),
    ],
)
def test_tool_choices_and_names_openai_refuses_are_refused_in_its_words(
    fields: dict[str, Any], param: str, says: str, code: str | None
) -> None:
    """Codex would offer them to the model (whose API refuses the names mid-turn), or report the choice."""
    error = rejected(**fields)
    assert (error.message, error.param, error.code) == (says, param, code)
    assert parse(tools=[named("Get_weather-2" + "x" * 51)]).tools.specs[0].name == "Get_weather-2" + "x" * 51
    assert len(parse(tools=[named(f"t{index}") for index in range(128)]).tools.specs) == 128


def test_list_of_text_parts_is_joined_by_newlines() -> None:
    parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    conversation = parse(messages=[msg("system", parts), msg("user", parts)]).conversation
    assert conversation.instructions == "first\nsecond"
    assert conversation.prompt == "first\nsecond"


def test_a_content_part_of_another_type_is_refused_naming_it() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
    error = rejected(messages=[msg("user", [{"type": "text", "text": "look"}, part])])
    assert error.param == "messages[0].content[1]"
    assert error.message == "messages[0].content[1]: content part of type 'input_audio' is not supported"


@pytest.mark.parametrize(
    ("part", "param", "message", "code"),
    [
        (
            {"type": "text"},
            "messages[0].content[1].text",
            "Missing required parameter: 'messages[0].content[1].text'.",
            "missing_required_parameter",
        ),
        (
            {"type": "text", "text": 5},
            "messages[0].content[1].text",
            "Invalid type for 'messages[0].content[1].text': expected a string, but got an integer instead.",
            "invalid_type",
        ),
        (
            {"type": "image_url", "image_url": "https://example.com/a.png"},
            "messages[0].content[1].image_url",
            "Invalid type for 'messages[0].content[1].image_url': expected an object, but got a string instead.",
            "invalid_type",
        ),
        (
            {"type": "image_url", "image_url": {}},
            "messages[0].content[1].image_url.url",
            "Missing required parameter: 'messages[0].content[1].image_url.url'.",
            "missing_required_parameter",
        ),
    ],
)
def test_a_part_of_a_supported_type_says_what_is_wrong_with_it(
    part: dict[str, Any], param: str, message: str, code: str
) -> None:
    error = rejected(messages=[msg("user", [{"type": "text", "text": "look"}, part])])
    assert (error.param, error.message, error.code) == (param, message, code)


def test_an_image_outside_a_user_message_is_refused_saying_where_images_go() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    error = rejected(messages=[msg("system", [image]), msg("user", "q")])
    assert error.param == "messages[0].content[0]"
    assert error.message == (
        "messages[0].content[0]: an image can only be sent in a user message or a tool's output, "
        "not in one of role 'system'"
    )


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_text", "text": "hi"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
    ],
)
def test_a_part_of_the_responses_apis_type_is_not_supported_in_chat(part: dict[str, Any]) -> None:
    error = rejected(messages=[msg("user", [part])])
    assert error.message == f"messages[0].content[0]: content part of type {part['type']!r} is not supported"


def test_null_content_is_empty_text() -> None:
    conversation = parse(messages=[msg("assistant", None), msg("user", "q")]).conversation
    assert conversation.history == (Message("assistant", ""),)


@pytest.mark.parametrize(
    "message",
    [
        msg("system", None),
        msg("developer", None),
        msg("user", None),
        {"role": "user"},
        msg("tool", None, tool_call_id="c"),
    ],
)
def test_null_or_missing_content_is_refused_but_an_assistants(message: dict[str, Any]) -> None:
    """As OpenAI answers it (a tool that returned None is the common cause): not an empty message."""
    before = [msg("user", "q"), msg("assistant", "a")]
    if message["role"] == "tool":
        before[1] = msg("assistant", None, tool_calls=[call("c")])
    error = rejected(messages=[*before, message, msg("user", "u")])
    assert (error.message, error.param) == (
        "Invalid value for 'content': expected a string, got null.",
        "messages[2].content",
    )


def call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("messages", "param", "says"),
    [
        ([msg("user", "q"), msg("tool", "r", tool_call_id="x")], "messages[1].role", "no call 'x' awaits"),
        (
            [msg("user", "q"), msg("assistant", None, tool_calls=[call("c1")]), msg("tool", "r", tool_call_id="zz")],
            "messages[2].role",
            "no call 'zz' awaits",
        ),
        (
            [
                msg("user", "q"),
                msg("assistant", None, tool_calls=[call("c1")]),
                msg("tool", "r", tool_call_id="c1"),
                msg("tool", "again", tool_call_id="c1"),
            ],
            "messages[3].role",
            "no call 'c1' awaits",
        ),
        (
            [
                msg("user", "q"),
                msg("assistant", None, tool_calls=[call("c1"), call("c2")]),
                msg("tool", "r", tool_call_id="c2"),
                msg("user", "and?"),
            ],
            "messages[3].role",
            "The following tool_call_ids did not have response messages: c1",
        ),
        (
            [msg("user", "q"), msg("assistant", None, tool_calls=[call("c1")]), msg("system", "s"), msg("user", "u")],
            "messages[2].role",
            "did not have response messages: c1",
        ),
        (
            [
                msg("user", "q"),
                msg("assistant", None, tool_calls=[call("c1"), call("c2")]),
                msg("tool", "r", tool_call_id="c1"),
            ],
            "messages",
            "did not have response messages: c2",
        ),
    ],
)
def test_tool_messages_must_answer_the_calls_before_them(messages: list[dict[str, Any]], param: str, says: str) -> None:
    """As OpenAI refuses them: a result no call awaits (it used to reach the model as an orphan, or a
    call was answered 'aborted'), a message of another role before every call is answered, and a
    request that ends before then (its other calls were answered 'aborted')."""
    error = rejected(messages=messages)
    assert error.param == param and says in error.message


@pytest.mark.parametrize(
    ("message", "reported"),
    [
        (msg("user", "q", name="alice"), "messages.name"),
        (msg("system", "s", name="bob"), "messages.name"),
        (msg("assistant", None, refusal="no"), "messages.refusal"),
        (msg("assistant", [{"type": "refusal", "refusal": "no"}]), "messages.refusal"),  # it was a 400
        (msg("assistant", "a", audio={"id": "a1"}), "messages.audio"),
        (msg("assistant", None, function_call={"name": "f", "arguments": "{}"}), "messages.function_call"),
        (
            msg("user", [{"type": "text", "text": "t", "prompt_cache_breakpoint": {"mode": "explicit"}}]),
            "messages.content.prompt_cache_breakpoint",
        ),
    ],
)
def test_message_fields_codex_has_no_place_for_are_reported(message: dict[str, Any], reported: str) -> None:
    """The message is read without them (a participant's name, a refusal, audio, the deprecated function call,
    a cache breakpoint), and strict mode refuses them."""
    messages = [message, msg("user", "q")] if message["role"] != "user" else [msg("user", "first"), message]
    parsed = parse(messages=messages)
    assert parsed.ignored == (reported,)
    assert rejected(strict=True, messages=messages).param == reported


def test_reported_message_fields_are_remembered_for_a_history_read_once() -> None:
    """A re-sent history is read once (HistoryMemo): what it reported is reported again each time."""
    memo = HistoryMemo()
    history = [msg("system", "s" * 80, name="bob"), msg("user", "q1")]
    first = parse_chat_request(body(messages=history), default_model=None, strict=False, memo=memo)
    history += [msg("assistant", "a1"), msg("user", "q2")]
    again = parse_chat_request(body(messages=history), default_model=None, strict=False, memo=memo)
    assert first.ignored == again.ignored == ("messages.name",)
    assert again.conversation.prior is not None  # (the kept read was continued, not read again)


def test_build_conversation_directly() -> None:
    conversation = build_conversation(
        [ChatMessage(role="developer", content="d"), ChatMessage(role="user", content="u")]
    )
    assert conversation == Conversation(instructions="d", history=(), prompt="u")


# --- n ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, MAX_N])
def test_n_within_bounds(n: int) -> None:
    assert parse(n=n).request.n == n


@pytest.mark.parametrize(
    ("n", "message", "code"),
    [
        (
            0,
            "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "integer_below_min_value",
        ),
        (
            -1,
            "Invalid 'n': integer below minimum value. Expected a value >= 1, but got -1 instead.",
            "integer_below_min_value",
        ),
        (  # claif_cod's own bound, in OpenAI's words: OpenAI's is 128
            MAX_N + 1,
            f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_N}, but got {MAX_N + 1} instead.",
            "integer_above_max_value",
        ),
    ],
)
def test_n_out_of_bounds(n: int, message: str, code: str | None) -> None:
    error = rejected(n=n)
    assert (error.param, error.message, error.code) == ("n", message, code)


HUGE = 10**400
"""Past a float's range, and within what a JSON body's integer may be (msgspec takes it)."""


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("n", 10**6, "integer above maximum value. Expected a value <= 16, but got 1000000 instead."),
        ("n", HUGE, f"integer above maximum value. Expected a value <= 16, but got {HUGE} instead."),
        ("top_logprobs", HUGE, f"integer above maximum value. Expected a value <= 20, but got {HUGE} instead."),
        ("max_tokens", -HUGE, f"integer below minimum value. Expected a value >= 1, but got {-HUGE} instead."),
    ],
    ids=["n 10**6", "n 10**400", "top_logprobs 10**400", "max_tokens -10**400"],
)
def test_an_integer_far_out_of_range_is_said_back_whole(field: str, value: int, says: str) -> None:
    """A JSON integer past a float's range was an OverflowError (a 500, "internal error in claif_cod"), and
    one within it was said back as a float ("but got 1e+06")."""
    error = rejected(**{field: value})
    assert (error.param, error.message) == (field, f"Invalid '{field}': {says}")


def test_n_defaults_to_one() -> None:
    assert parse().request.choices == 1


def test_n_above_one_cannot_use_a_named_session() -> None:
    error = rejected(n=2, session_id="s")
    assert error.param == "n"
    assert "session" in error.message
    assert parse(n=1, session_id="s").request.session_id == "s"


# --- stop ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        (None, ()),
        ("END", ("END",)),
        ([], ()),
        (["a"], ("a",)),
        (["a", "b", "c", "d"], ("a", "b", "c", "d")),
    ],
)
def test_stop_is_normalised_to_a_tuple(stop: Any, expected: tuple[str, ...]) -> None:
    assert parse(stop=stop).stop == expected


def test_stop_absent_is_empty() -> None:
    assert parse().stop == ()


@pytest.mark.parametrize("stop", ["", ["a", ""]])
def test_an_empty_stop_sequence_is_refused(stop: Any) -> None:
    error = rejected(stop=stop)
    assert (error.param, error.message) == ("stop", "stop sequences must be non-empty strings")


def test_more_than_four_stop_sequences_are_refused_in_openais_words() -> None:
    error = rejected(stop=["a", "b", "c", "d", "e"])
    message = (
        "Invalid 'stop': array too long. Expected an array with maximum length 4, "
        "but got an array with length 5 instead."
    )
    assert (error.param, error.message, error.code) == ("stop", message, "array_above_max_length")


# --- response_format ----------------------------------------------------------------------


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_json_schema_becomes_output_schema() -> None:
    parsed = parse(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA, "strict": True}}
    )
    assert parsed.output_schema == SCHEMA
    assert parsed.ignored == ()


@pytest.mark.parametrize(
    ("name", "code"), [("My Schema", "invalid_value"), ("", "empty_string"), ("x" * 65, "string_above_max_length")]
)
def test_a_json_schema_name_openai_would_refuse_is_refused_in_its_words(name: str, code: str) -> None:
    error = rejected(response_format={"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMA}})
    assert (error.param, error.code) == ("response_format.json_schema.name", code)
    assert error.message.startswith("Invalid 'response_format.json_schema.name': ")


def test_an_empty_reasoning_effort_is_refused_not_taken_for_none() -> None:
    error = rejected(reasoning_effort="")
    assert (error.param, error.code) == ("reasoning_effort", "empty_string")
    assert parse(reasoning_effort="high").request.reasoning_effort == "high"


def test_a_reasoning_effort_openai_does_not_know_is_refused_in_its_words() -> None:
    """It was passed to Codex, and on to the model."""
    error = rejected(reasoning_effort="turbo")
    says = (
        "Invalid value: 'turbo'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', and 'max'."
    )
    assert (error.message, error.param, error.code) == (says, "reasoning_effort", "invalid_value")


def test_json_schema_without_schema_is_rejected() -> None:
    error = rejected(response_format={"type": "json_schema", "json_schema": {"name": "x"}})
    assert error.param == "response_format"
    assert "json_schema.schema" in error.message


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}, "response_format.json_schema.name"),
    ],
)
def test_json_schema_without_its_object_or_name_is_refused_as_openai_refuses_it(
    fmt: dict[str, Any], param: str
) -> None:
    error = rejected(response_format=fmt)
    assert (error.message, error.param, error.code) == (
        f"Missing required parameter: '{param}'.",
        param,
        "missing_required_parameter",
    )


def test_text_format_is_nothing() -> None:
    parsed = parse(response_format={"type": "text"})
    assert parsed.output_schema is None
    assert parsed.ignored == ()


@pytest.mark.parametrize(
    ("json_schema", "reported"),
    [
        ({"strict": True}, ()),
        ({}, ()),  # absent: OpenAI's default is not strict; docs/parameters.md says Codex always is
        ({"strict": False}, ("response_format.json_schema.strict",)),
        ({"description": "a person"}, ("response_format.json_schema.description",)),
    ],
)
def test_json_schema_strict_false_and_description_are_reported(
    json_schema: dict[str, Any], reported: tuple[str, ...]
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}, **json_schema}}
    assert parse(response_format=fmt).ignored == reported


@pytest.mark.parametrize(
    ("fields", "reported"),
    [
        ({"store": True}, ("store",)),  # a stored completion (chat.completions.retrieve) is not kept
        ({"store": False}, ()),
        ({"stream": True, "stream_options": {"include_obfuscation": True}}, ("stream_options.include_obfuscation",)),
        ({"stream": True, "stream_options": {"include_obfuscation": False}}, ()),
    ],
)
def test_store_and_obfuscation_are_reported_when_asked_for(fields: dict[str, Any], reported: tuple[str, ...]) -> None:
    assert parse(**fields).ignored == reported


def test_json_object_is_reported_as_ignored() -> None:
    parsed = parse(response_format={"type": "json_object"})
    assert parsed.output_schema is None
    assert parsed.ignored == ("response_format.json_object",)


def test_json_object_is_rejected_in_strict_mode() -> None:
    error = rejected(strict=True, response_format={"type": "json_object"})
    assert error.param == "response_format.json_object"
    assert "response_format.json_object" in error.message


def test_unknown_response_format_type_is_invalid() -> None:
    error = rejected(response_format={"type": "xml"})
    assert "response_format" in error.message


# --- reported parameters and strict mode --------------------------------------------------


def test_ignored_parameters_are_reported_sorted() -> None:
    parsed = parse(temperature=0.2, functions=[{"name": "f"}], max_tokens=5, seed=1, top_p=1.0)
    assert parsed.ignored == ("functions", "max_tokens", "seed", "temperature", "top_p")


WELL_TYPED: dict[str, Any] = {
    "temperature": 0.5,
    "top_p": 1,
    "frequency_penalty": -0.5,
    "presence_penalty": 0.5,
    "seed": 7,
    "max_tokens": 100,
    "max_completion_tokens": 100,
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"50256": -100},
    "functions": [{"name": "f", "parameters": {}}],
    "function_call": "auto",
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},
    "verbosity": "low",
    "service_tier": "flex",
    "prompt_cache_key": "k",
}
"""One value of each known ignored parameter of the type OpenAI takes."""


def test_every_known_ignored_parameter_is_reported() -> None:
    assert set(WELL_TYPED) == IGNORED
    parsed = parse(**WELL_TYPED)
    assert parsed.ignored == tuple(sorted(IGNORED))


def test_every_parameter_not_acted_on_is_typed() -> None:
    # A parameter that is reported or has no effect is still checked for its type, as OpenAI checks it.
    assert set(ChatRequest.__struct_fields__) >= IGNORED | NO_EFFECT


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("temperature", "hot"),
        ("top_p", True),
        ("max_tokens", "100"),
        ("max_completion_tokens", 1.5),
        ("seed", "7"),
        ("logprobs", "yes"),
        ("logit_bias", {"50256": "ban"}),
        ("functions", {"name": "f"}),
        ("modalities", "text"),
        ("service_tier", 1),
        ("user", 42),
        ("metadata", {"a": 1}),
    ],
)
def test_a_mistyped_parameter_is_refused_not_reported(param: str, value: Any) -> None:
    error = rejected(**{param: value})
    assert error.code == "invalid_type"
    assert error.param == param


@pytest.mark.parametrize("param", sorted(IGNORED))
def test_a_null_ignored_parameter_asks_for_nothing_and_is_not_reported(param: str) -> None:
    """A null is OpenAI's default (docs/parameters.md): nothing was asked that claif_cod could not do."""
    assert parse(**{param: None}).ignored == ()


@pytest.mark.parametrize("stream", [False, None])
def test_stream_options_without_stream_is_refused_as_openai_refuses_it(stream: bool | None) -> None:
    fields: dict[str, Any] = {"stream_options": {"include_usage": True}}
    if stream is not None:
        fields["stream"] = stream
    error = rejected(**fields)
    assert error.param == "stream_options"
    assert "only allowed when 'stream' is enabled" in error.message


def test_null_stream_options_without_stream_is_accepted() -> None:
    assert parse(stream_options=None).ignored == ()


def test_unknown_extra_body_keys_are_reported() -> None:
    assert parse(frobnicate=True).ignored == ("frobnicate",)


def test_honoured_parameters_are_not_reported() -> None:
    parsed = parse(
        model="m",
        stream=True,
        stream_options={"include_usage": True},
        n=1,
        stop="x",
        response_format={"type": "text"},
        reasoning_effort="low",
        session_id="s",
        strict=False,
    )
    assert parsed.ignored == ()
    assert parsed.request.stream is True
    assert parsed.request.stream_options is not None
    assert parsed.request.stream_options.include_usage
    assert parsed.request.reasoning_effort == "low"


def test_parameter_sets_are_disjoint() -> None:
    assert not HONOURED & NO_EFFECT
    assert not HONOURED & IGNORED
    assert not NO_EFFECT & IGNORED


@pytest.mark.parametrize("strict", [False, True])
def test_no_effect_parameters_are_never_reported(strict: bool) -> None:
    fields: dict[str, Any] = {"user": "u", "metadata": {"a": "b"}, "safety_identifier": "x"}
    assert set(fields) == NO_EFFECT
    assert parse(strict=strict, **fields).ignored == ()


def test_strict_rejects_ignored_parameters_naming_them() -> None:
    error = rejected(strict=True, top_p=1.0, temperature=0.5)
    assert error.param == "temperature"
    assert "temperature, top_p" in error.message
    assert "strict" in error.message


def test_strict_in_the_body_overrides_the_client_setting() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(body(temperature=0.5, strict=True), default_model=None, strict=False)
    assert info.value.param == "temperature"
    lenient = parse_chat_request(body(temperature=0.5, strict=False), default_model=None, strict=True)
    assert lenient.ignored == ("temperature",)


def test_strict_without_ignored_parameters_passes() -> None:
    assert parse(strict=True, user="u").ignored == ()


# --- model --------------------------------------------------------------------------------


def test_model_defaults_to_the_client_model() -> None:
    assert parse(default_model="gpt-default").request.model == "gpt-default"
    assert parse(default_model=None).request.model is None


def test_explicit_model_wins() -> None:
    assert parse(model="o4-mini", default_model="gpt-default").request.model == "o4-mini"


# --- malformed bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"messages": [}'])
def test_bad_json(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        parse_chat_request(raw, default_model=None, strict=False)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b"[]", "object"),
        (b'{"model": "m"}', "messages"),
        (b'{"messages": "hi"}', "messages"),
        (b'{"messages": [{"content": "hi"}]}', "role"),
        (b'{"messages": [{"role": "user", "content": 3}]}', "content"),
        (b'{"messages": [{"role": "user", "content": ["hi"]}]}', "content"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "model": 4}', "model"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "n": "2"}', "n"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "n": 1.5}', "n"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', "stream"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stop": 7}', "stop"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stop": [1]}', "stop"),
    ],
)
def test_wrong_types_are_invalid_requests_naming_the_field(raw: bytes, where: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw, default_model=None, strict=False)
    assert info.value.message.startswith(("invalid request body:", "Missing required parameter: '"))
    assert where in info.value.message


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content", "invalid_type"),
        ({"messages": [], "n": "two"}, "n", "invalid_type"),
    ],
)
def test_a_body_of_the_wrong_shape_names_the_param_as_openai_does(body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_chat_request(json.dumps(body).encode(), default_model=None, strict=False)
    assert (raised.value.param, raised.value.code) == (param, code), raised.value.message
    if code == "missing_required_parameter":
        assert raised.value.message == f"Missing required parameter: '{param}'."


@pytest.mark.parametrize(
    ("field", "value", "says", "code"),
    [
        (
            "temperature",
            3,
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
            "decimal_above_max_value",
        ),
        (
            "temperature",
            -0.5,
            "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -0.5 instead.",
            "decimal_below_min_value",
        ),
        (
            "top_p",
            1.5,
            "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 instead.",
            "decimal_above_max_value",
        ),
        (
            "presence_penalty",
            -2.5,
            "Invalid 'presence_penalty': decimal below minimum value. Expected a value >= -2, but got -2.5 instead.",
            "decimal_below_min_value",
        ),
        (
            "frequency_penalty",
            2.1,
            "Invalid 'frequency_penalty': decimal above maximum value. Expected a value <= 2, but got 2.1 instead.",
            "decimal_above_max_value",
        ),
        (
            "top_logprobs",
            21,
            "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got 21 instead.",
            "integer_above_max_value",
        ),
        (
            "max_completion_tokens",
            0,
            "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "integer_below_min_value",
        ),
    ],
)
def test_sampling_parameters_out_of_openais_range_are_openais_400(
    field: str, value: float, says: str, code: str
) -> None:
    """Codex takes none of them (reported), but OpenAI refuses these values: so does claif_cod."""
    error = rejected(**{field: value})
    assert (error.message, error.param, error.code) == (says, field, code)
    assert parse(**{field: 2 if field == "temperature" else 1}).ignored == (field,)  # in range: reported


def test_openais_defaults_sent_as_values_ask_for_nothing_and_other_values_are_its_400() -> None:
    assert parse(service_tier="auto").ignored == ()
    # Codex asks the model for its catalog's verbosity (low for Codex's models): OpenAI's medium too is not what runs
    assert parse(verbosity="medium").ignored == ("verbosity",)
    assert parse(verbosity="high", service_tier="flex").ignored == ("service_tier", "verbosity")
    assert parse(truncation="disabled").ignored == ("truncation",)  # not chat's: unknown, whatever its value
    error = rejected(verbosity="tiny")
    says = "Invalid value: 'tiny'. Supported values are: 'low', 'medium', and 'high'."
    assert (error.message, error.param, error.code) == (says, "verbosity", "invalid_value")
    assert rejected(service_tier="gold").param == "service_tier"
    assert parse(service_tier="fast").ignored == ("service_tier",)  # openai 3.63's newest tier


@pytest.mark.parametrize(("param", "value"), [("logprobs", False), ("modalities", ["text"]), ("service_tier", "auto")])
def test_openais_defaults_that_codex_does_are_not_reported_even_in_strict_mode(param: str, value: Any) -> None:
    """``logprobs: false`` asks for no log-probabilities and ``modalities: ["text"]`` for text only, which
    is all Codex gives: they were reported, so that strict mode refused them."""
    assert parse(strict=True, **{param: value}).ignored == ()
    spaced = body(**{param: value}).replace(b",", b" ,\n ").replace(b"[", b"[ ")
    assert parse_chat_request(spaced, default_model=None, strict=True).ignored == ()
    assert stream_and_ignored(spaced) == (False, ())


@pytest.mark.parametrize(("param", "value"), [("logprobs", True), ("modalities", ["text", "audio"])])
def test_what_codex_cannot_give_is_still_reported(param: str, value: Any) -> None:
    assert parse(**{param: value}).ignored == (param,)
    assert stream_and_ignored(body(**{param: value})) == (False, (param,))


@pytest.mark.parametrize(
    ("metadata", "param", "code", "says"),
    [
        (
            {f"k{i}": "v" for i in range(17)},
            "metadata",
            "object_above_max_properties",
            "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an"
            " object with 17 properties instead.",
        ),
        (
            {"k": "x" * 600},
            "metadata.k",
            "string_above_max_length",
            "Invalid 'metadata.k': string too long. Expected a string with maximum length 512, but got a string"
            " with length 600 instead.",
        ),
        (
            {"k" * 70: "v"},
            "metadata." + "k" * 70,
            "property_name_above_max_length",
            "Invalid property name in 'metadata': 'kkk...kkk' is too long. Expected a string with maximum length"
            " 64, but got a string with length 70 instead.",
        ),
    ],
    ids=["pairs", "value", "key"],
)
def test_metadata_beyond_openais_bounds_is_refused_in_its_words(
    metadata: dict[str, str], param: str, code: str, says: str
) -> None:
    """As OpenAI's API answered each (live captures quoted by a public parity test suite)."""
    error = rejected(metadata=metadata)
    assert (error.param, error.code, error.message) == (param, code, says)
    assert parse(metadata={f"k{i}": "v" * 512 for i in range(16)}).ignored == ()


@pytest.mark.parametrize(
    ("logit_bias", "param", "says", "code"),
    [
        (
            {"50256": 101},
            "logit_bias.50256",
            "Invalid 'logit_bias.50256': integer above maximum value. Expected a value <= 100, but got 101 instead.",
            "integer_above_max_value",
        ),
        (
            {"1": 0, "7": -101},
            "logit_bias.7",
            "Invalid 'logit_bias.7': integer below minimum value. Expected a value >= -100, but got -101 instead.",
            "integer_below_min_value",
        ),
        (
            {" You": 6},
            "logit_bias",
            "Invalid key in 'logit_bias':  You. You should only be submitting non-negative integers.",
            None,
        ),
        (
            {"-5": 1},
            "logit_bias",
            "Invalid key in 'logit_bias': -5. You should only be submitting non-negative integers.",
            None,
        ),
        (
            {str(token): 1 for token in range(1025)},
            "logit_bias",
            "Invalid 'logit_bias': too many properties. "
            "Expected an object with at most 1024 properties, but got an object with 1025 properties instead.",
            "object_above_max_properties",
        ),
    ],
)
def test_a_logit_bias_openai_refuses_is_refused_in_its_words(
    logit_bias: dict[str, int], param: str, says: str, code: str | None
) -> None:
    """Codex samples nothing (``logit_bias`` is reported), but OpenAI refuses these before any model runs."""
    error = rejected(logit_bias=logit_bias)
    assert (error.message, error.param, error.code) == (says, param, code)
    in_bounds = {str(token): bias for token, bias in zip(range(1024), [-100, 100, 0] * 342, strict=False)}
    assert parse(logit_bias=in_bounds).ignored == ("logit_bias",)
