"""parse_responses_request: parameters Codex cannot take are reported when well formed, refused when mistyped."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from openai.types.responses import ResponseIncludable

from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools import ToolCall, ToolResult
from claif_cod.openai_compat.ranges import INCLUDABLE
from claif_cod.openai_compat.responses_calls import calls_made, check_calls
from claif_cod.openai_compat.responses_request import HONOURED, ParsedResponses, parse_responses_request

WELL_TYPED: dict[str, Any] = {
    "temperature": 0.2,
    "top_p": 1,
    "top_logprobs": 3,
    "max_output_tokens": 100,
    "max_tool_calls": 2,
    "truncation": "auto",
    "include": ["reasoning.encrypted_content"],
    "service_tier": "flex",
    "prompt_cache_key": "k",
}


def parse(**fields: Any) -> ParsedResponses:
    body = json.dumps({"model": "m", "input": "hi", **fields}).encode()
    return parse_responses_request(body, default_model=None, strict=False)


def test_null_is_openais_default_for_every_optional_parameter_acted_on() -> None:
    """As for chat: ``store``, ``stream`` and ``background`` were refused when null, and a null
    ``store`` must mean OpenAI's default, stored."""
    honoured = HONOURED - {"input", "model", "previous_response_id", "conversation"}
    parsed = parse(**{key: None for key in honoured})
    assert parsed.request.stored and not parsed.request.stream and parsed.ignored == ()


def test_well_typed_parameters_are_reported() -> None:
    assert parse(**WELL_TYPED).ignored == tuple(sorted(WELL_TYPED))


@pytest.mark.parametrize("param", sorted(WELL_TYPED))
def test_a_null_parameter_asks_for_nothing_and_is_not_reported(param: str) -> None:
    assert parse(**{param: None}).ignored == ()


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("temperature", "hot"),
        ("top_p", False),
        ("max_output_tokens", "100"),
        ("max_tool_calls", 2.5),
        ("truncation", 1),
        ("include", "reasoning.encrypted_content"),
        ("user", 7),
        ("safety_identifier", ["x"]),
    ],
)
def test_a_mistyped_parameter_is_refused_not_reported(param: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(**{param: value})
    assert info.value.param == param
    assert info.value.code == "invalid_type"


def call(call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}


def output(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "r"}


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ([output("nope")], "No tool call found for function call output with call_id nope."),
        (
            [{"role": "user", "content": "q"}, output("nope")],
            "No tool call found for function call output with call_id nope.",
        ),
        ([output("k1"), call("k1")], "No tool call found for function call output with call_id k1."),
        (
            [{"role": "user", "content": "q"}, call("k1"), {"role": "user", "content": "next"}],
            "No tool output found for function call k1.",
        ),
        ([call("k1"), call("k2"), output("k2")], "No tool output found for function call k1."),
    ],
)
def test_calls_and_their_outputs_must_pair_as_openai_requires(items: list[dict[str, Any]], says: str) -> None:
    """Codex would take either alone (an output of nothing reaches the model; a call without its output is
    answered 'aborted'); OpenAI refuses both."""
    with pytest.raises(InvalidRequest) as refused:
        parse(input=items)
    assert (refused.value.message, refused.value.param) == (says, "input")


def test_outputs_may_answer_a_previous_responses_calls() -> None:
    """Checked as the response starts, against the calls the previous response made (below)."""
    parsed = parse(previous_response_id="resp_1", input=[output("c1"), output("c2")])
    assert [result.call_id for result in parsed.pending_results()] == ["c1", "c2"]
    assert parse(input=[{"role": "user", "content": "q"}, call("k1"), output("k1")]).pending_results()


def test_a_continued_responses_calls_are_each_answered_and_no_other_call() -> None:
    made = {"type": "function_call", "name": "f", "arguments": "{}", "status": "completed"}
    output_items = [{"type": "message", "id": "msg_1"}, {**made, "call_id": "c1"}, {**made, "call_id": "c2"}]
    waiting = calls_made(json.dumps({"id": "resp_1", "output": output_items}).encode())
    assert waiting == ["c1", "c2"]
    check_calls([ToolResult("c2", "x"), ToolResult("c1", "y")], waiting)
    check_calls([ToolResult("c1", "x"), ToolResult("c2", "y"), ToolCall("k", "f", "{}"), ToolResult("k", "z")], waiting)
    check_calls([], calls_made(b'{"id": "resp_2", "output": []}'))
    unknown = [ToolResult("c1", "x"), ToolResult("c2", "y"), ToolResult("c3", "z")]
    for items, says in [
        ([], "No tool output found for function call c1."),
        ([ToolResult("c1", "x")], "No tool output found for function call c2."),
        (unknown, "No tool call found for function call output with call_id c3."),
    ]:
        with pytest.raises(InvalidRequest) as refused:
            check_calls(items, waiting)
        assert (refused.value.message, refused.value.param) == (says, "input")


@pytest.mark.parametrize(("field", "value"), [("temperature", 2.5), ("top_p", -1), ("top_logprobs", 30)])
def test_sampling_parameters_out_of_openais_range_are_refused_as_for_chat(field: str, value: float) -> None:
    with pytest.raises(InvalidRequest, match=rf"^Invalid '{field}': (decimal|integer) (above|below)") as refused:
        parse(**{field: value})
    assert refused.value.param == field


def test_openais_defaults_sent_as_values_ask_for_nothing_even_in_strict_mode() -> None:
    defaults = {"truncation": "disabled", "service_tier": "auto"}
    assert parse(**defaults).ignored == ()
    assert parse(**defaults, strict=True).ignored == ()
    # Codex asks the model for its catalog's verbosity (low for Codex's models): OpenAI's medium too is not what runs
    assert parse(text={"verbosity": "medium"}).ignored == ("text.verbosity",)
    assert parse(truncation="auto", service_tier="default", text={"verbosity": "low"}).ignored == (
        "service_tier",
        "text.verbosity",
        "truncation",
    )


@pytest.mark.parametrize(
    ("fields", "param", "supported"),
    [
        ({"truncation": "sometimes"}, "truncation", "'auto' and 'disabled'"),
        ({"service_tier": "gold"}, "service_tier", "'auto', 'default', 'fast', 'flex', 'priority', and 'scale'"),
        ({"text": {"verbosity": "tiny"}}, "text.verbosity", "'low', 'medium', and 'high'"),
        ({"reasoning": {"summary": "loud"}}, "reasoning.summary", "'auto', 'concise', 'detailed', and 'none'"),
        (
            {"reasoning": {"effort": "turbo"}},  # (it reached the model, and came back in the response)
            "reasoning.effort",
            "'none', 'minimal', 'low', 'medium', 'high', 'xhigh', and 'max'",
        ),
    ],
)
def test_a_value_outside_an_enumeration_is_refused_in_openais_words_before_any_turn(
    fields: dict[str, Any], param: str, supported: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(**fields)
    value = next(iter(fields.values()))
    value = next(iter(value.values())) if isinstance(value, dict) else value
    says = f"Invalid value: {value!r}. Supported values are: {supported}."
    assert (refused.value.message, refused.value.param, refused.value.code) == (says, param, "invalid_value")


def test_max_output_tokens_under_openais_minimum_is_refused_in_its_words() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(max_output_tokens=10)
    says = "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 10 instead."
    assert (refused.value.message, refused.value.code) == (says, "integer_below_min_value")
    assert parse(max_output_tokens=16).ignored == ("max_output_tokens",)


def test_an_include_value_openai_does_not_know_is_refused_in_its_words_naming_its_index() -> None:
    """OpenAI's words, from a direct API capture (``include: ['bogus.thing']``): every value it takes,
    in openai's ``ResponseIncludable`` order."""
    with pytest.raises(InvalidRequest) as refused:
        parse(include=["reasoning.encrypted_content", "usage"])
    says = (
        "Invalid value: 'usage'. Supported values are: 'file_search_call.results', 'web_search_call.results', "
        "'web_search_call.action.sources', 'message.input_image.image_url', "
        "'computer_call_output.output.image_url', 'code_interpreter_call.outputs', "
        "'reasoning.encrypted_content', and 'message.output_text.logprobs'."
    )
    assert (refused.value.message, refused.value.param, refused.value.code) == (says, "include[1]", "invalid_value")
    with pytest.raises(InvalidRequest) as strictly:  # checked before strict mode refuses what it reports
        parse(include=["usage"], strict=True)
    assert strictly.value.param == "include[0]"


def test_every_include_value_openai_takes_is_reported_none_refused() -> None:
    """Codex provides none of them (no encrypted reasoning, logprobs or hosted tools' results)."""
    assert typing.get_args(ResponseIncludable) == INCLUDABLE  # openai's list, kept in step with its SDK
    assert parse(include=list(INCLUDABLE)).ignored == ("include",)
    assert parse(include=[], strict=True).ignored == ()


@pytest.mark.parametrize("calls", [0, -1])
def test_max_tool_calls_under_one_is_refused_in_openais_words(calls: int) -> None:
    """OpenAI's minimum is 1 (a direct API capture: "max_tool_calls 0" is ``integer_below_min_value``)."""
    with pytest.raises(InvalidRequest) as refused:
        parse(max_tool_calls=calls)
    says = f"Invalid 'max_tool_calls': integer below minimum value. Expected a value >= 1, but got {calls} instead."
    assert (refused.value.message, refused.value.param, refused.value.code) == (
        says,
        "max_tool_calls",
        "integer_below_min_value",
    )
    assert parse(max_tool_calls=1).ignored == ("max_tool_calls",)


def test_an_empty_reasoning_effort_is_refused_as_in_chat() -> None:
    with pytest.raises(InvalidRequest, match=r"^Invalid 'reasoning.effort': empty string") as empty:
        parse(reasoning={"effort": ""})
    assert (empty.value.param, empty.value.code) == ("reasoning.effort", "empty_string")


def test_a_json_schema_format_needs_its_name_and_a_tool_its_valid_name_as_for_chat() -> None:
    with pytest.raises(InvalidRequest, match=r"^Missing required parameter: 'text.format.name'.$") as nameless:
        parse(text={"format": {"type": "json_schema", "schema": {"type": "object"}}})
    assert (nameless.value.param, nameless.value.code) == ("text.format.name", "missing_required_parameter")
    with pytest.raises(InvalidRequest, match=r"^Invalid 'text.format.name': string does not match pattern") as spaced:
        parse(text={"format": {"type": "json_schema", "name": "My Schema", "schema": {"type": "object"}}})
    assert (spaced.value.param, spaced.value.code) == ("text.format.name", "invalid_value")
    tool = {"type": "function", "name": "a.b", "parameters": {"type": "object", "properties": {}}}
    with pytest.raises(InvalidRequest, match="string does not match pattern") as badly_named:
        parse(tools=[tool])
    assert badly_named.value.param == "tools[0].name"
    with pytest.raises(InvalidRequest, match="Supported values are") as bogus:
        parse(tools=[{**tool, "name": "ab"}], tool_choice="always")
    assert bogus.value.param == "tool_choice"
    with pytest.raises(InvalidRequest, match=r"^Tool choice 'function' not found in 'tools' parameter.$") as missing:
        parse(tools=[{**tool, "name": "ab"}], tool_choice={"type": "function", "name": "cd"})
    assert missing.value.param == "tool_choice"
    assert parse(tools=[{**tool, "name": "ab"}], tool_choice={"type": "function", "name": "ab"}).ignored == (
        "tool_choice",
    )


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"tool_choice": "required"}, "Tool choice 'required' must be specified with 'tools' parameter."),
        ({"tools": [], "tool_choice": "required"}, "Tool choice 'required' must be specified with 'tools' parameter."),
        ({"tool_choice": {"type": "function", "name": "ab"}}, "Tool choice 'function' not found in 'tools' parameter."),
    ],
)
def test_a_tool_choice_that_needs_a_tool_is_refused_without_tools_in_openais_words(
    fields: dict[str, Any], says: str
) -> None:
    """Unlike chat, Responses takes ``tool_choice`` ``none`` or ``auto``, and ``parallel_tool_calls``,
    without tools (Codex sends ``parallel_tool_calls`` to OpenAI so)."""
    with pytest.raises(InvalidRequest) as refused:
        parse(**fields)
    assert (refused.value.message, refused.value.param, refused.value.code) == (says, "tool_choice", None)
    for choice in ("none", "auto"):
        assert parse(tool_choice=choice, parallel_tool_calls=False).ignored == ()
    assert parse(tools=[], tool_choice="none").ignored == ()


@pytest.mark.parametrize(
    ("metadata", "param"),
    [({f"k{i}": "v" for i in range(17)}, "metadata"), ({"k": "v" * 513}, "metadata.k"), ({"k" * 65: "v"}, "metadata.")],
)
def test_metadata_beyond_openais_bounds_is_refused_as_by_conversations(metadata: dict[str, str], param: str) -> None:
    """``conversations.create`` refused it, ``responses.create`` (which echoes and keeps it) took it."""
    with pytest.raises(InvalidRequest) as info:
        parse(metadata=metadata)
    assert info.value.param.startswith(param)
    assert parse(metadata={f"k{i}": "v" * 512 for i in range(16)}).ignored == ()


def test_an_assistant_refusal_part_is_reported_not_refused_as_chats_refusal() -> None:
    """Agent libraries replay a response's output messages, whose parts may be refusals: the request
    was refused (``content part of type 'refusal' is not supported``)."""
    refused = {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]}
    parsed = parse(input=[{"role": "user", "content": "do it"}, refused, {"role": "user", "content": "why?"}])
    assert parsed.ignored == ("input.content.refusal",)
    assert [(m.role, m.text) for m in parsed.history] == [("user", "do it"), ("assistant", "")]
    with pytest.raises(InvalidRequest, match="refusal"):  # only a model's message holds one
        parse(input=[{"role": "user", "content": [{"type": "refusal", "refusal": "x"}]}])


@pytest.mark.parametrize("seconds", [0, -1, 86401])
def test_a_tool_timeout_out_of_its_bounds_is_refused_as_for_chat(seconds: float) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(tool_timeout=seconds)
    assert info.value.param == "tool_timeout"
    assert parse(tool_timeout=86400).ignored == ()


@pytest.mark.parametrize(
    ("part", "param", "says"),
    [
        ({"type": "input_image", "file_id": "file-1"}, "input[0].content[0].file_id", "file_id is not supported"),
        (
            {"type": "input_image", "image_url": {"url": "https://example.com/a.png"}},
            "input[0].content[0].image_url",
            "Invalid type for 'input[0].content[0].image_url': expected a string, but got an object instead.",
        ),
        ({"type": "input_text"}, "input[0].content[0].text", "Missing required parameter: 'input[0].content[0].text'."),
    ],
)
def test_an_input_part_of_a_supported_type_says_what_is_wrong_with_it(
    part: dict[str, Any], param: str, says: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(input=[{"role": "user", "content": [part]}])
    assert refused.value.param == param and says in refused.value.message


def test_a_chat_shaped_function_tool_is_missing_its_name_in_openais_words() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(InvalidRequest) as refused:
        parse(tools=[tool])
    says = "Missing required parameter: 'tools[0].name'."
    assert (refused.value.message, refused.value.param, refused.value.code) == (
        says,
        "tools[0].name",
        "missing_required_parameter",
    )


def test_an_unknown_role_is_refused_in_openais_words() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(input=[{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}])
    says = "Invalid value: 'tool'. Supported values are: 'user', 'assistant', 'system', and 'developer'."
    assert (refused.value.message, refused.value.param, refused.value.code) == (says, "input[1].role", "invalid_value")


def test_an_image_in_an_assistant_message_is_refused_saying_where_images_go() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    with pytest.raises(InvalidRequest) as refused:
        parse(input=[{"role": "assistant", "content": [image]}, {"role": "user", "content": "q"}])
    assert refused.value.param == "input[0].content[0]"
    assert "an image can only be sent in a user message or a tool's output, not in one of role 'assistant'" in (
        refused.value.message
    )


@pytest.mark.parametrize(
    "part", [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
)
def test_a_part_of_chats_type_is_not_supported_in_responses(part: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(input=[{"role": "user", "content": [part]}])
    assert refused.value.message == f"input[0].content[0]: content part of type {part['type']!r} is not supported"
