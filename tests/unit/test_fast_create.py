"""The create() fast path builds exactly the body openai's own transform would, or steps aside."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
from typing import Any

import msgspec
import pydantic
import pytest
from openai import NOT_GIVEN, NotGiven, omit
from openai._base_client import make_request_options
from openai._models import FinalRequestOptions
from openai._utils import maybe_transform
from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

from claif_cod.fast_create import CHAT, _final_options, prepare
from claif_cod.responses_resource import RESPONSES

MESSAGES: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "me"},
    {"role": "assistant", "content": "hello", "tool_calls": None},
    {"role": "user", "content": 'more ünïcode \u2028 "quotes"'},
]


@dataclasses.dataclass
class Message:
    role: str
    content: str


class Role(enum.Enum):
    USER = "user"


class StrRole(str, enum.Enum):
    USER = "user"


CHAT_PARAMS = (
    completion_create_params.CompletionCreateParamsNonStreaming,
    completion_create_params.CompletionCreateParamsStreaming,
)
RESPONSES_PARAMS = (
    response_create_params.ResponseCreateParamsNonStreaming,
    response_create_params.ResponseCreateParamsStreaming,
)


def openai_body(kwargs: dict[str, Any], kinds: tuple[Any, Any] = CHAT_PARAMS) -> Any:
    """The body openai's own ``create`` sends: its transform of the parameters, unset ones dropped."""
    params = {k: v for k, v in kwargs.items() if not k.startswith("extra_") and k != "timeout"}
    kind = kinds[bool(params.get("stream"))]
    return {k: v for k, v in maybe_transform(params, kind).items() if v is not NOT_GIVEN and v is not omit}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "o4-mini", "messages": MESSAGES},
        {"model": "o4-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        {"model": "m", "messages": MESSAGES, "n": 2, "stop": ["x"], "temperature": 0.5, "seed": 1, "user": "u"},
        {"model": "m", "messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": {"name": "a"}}},
        {"model": "m", "messages": MESSAGES, "temperature": NOT_GIVEN, "top_p": omit, "timeout": 3.0},
        {"model": "m", "messages": [{"role": StrRole.USER, "content": "hi"}]},  # a str: JSON keeps it
    ],
)
def test_plain_arguments_give_the_body_openai_would_send(kwargs: dict[str, Any]) -> None:
    prepared = prepare(kwargs, CHAT)
    assert prepared is not None and prepared.plain()
    assert msgspec.json.decode(prepared.content) == openai_body(kwargs)
    assert prepared.stream is bool(kwargs.get("stream"))
    assert prepared.options == make_request_options(
        extra_headers=kwargs.get("extra_headers"),
        extra_query=kwargs.get("extra_query"),
        timeout=kwargs.get("timeout", NOT_GIVEN),
        security={"bearer_auth": True},
    )


def test_request_options_are_openais() -> None:
    prepared = prepare(
        {
            "model": "m",
            "messages": MESSAGES,
            "extra_headers": {"X-A": "1"},
            "extra_query": {"q": "2"},
            "extra_body": {"temperature": 0.1, "model": "n"},
        },
        CHAT,
    )
    assert prepared is not None
    content, options = prepared.content, prepared.options
    # extra_body merged as openai merges it (its keys win), so the body is known before openai runs
    assert msgspec.json.decode(content) == {"model": "n", "messages": MESSAGES, "temperature": 0.1}
    assert options["headers"] == {"X-A": "1"}
    assert options["params"] == {"q": "2"}
    assert "extra_json" not in options


@pytest.mark.parametrize("extra", [{}, {"extra_headers": {"X-A": "1"}, "timeout": 3.0}])
def test_a_streams_options_are_those_openai_constructs(extra: dict[str, Any]) -> None:
    """Made once per path for requests without options of their own, then copied with each body."""
    for body in ("one", "two"):
        prepared = prepare({"model": "m", "messages": [{"role": "user", "content": body}], **extra}, CHAT)
        assert prepared is not None
        made = _final_options("/chat/completions", prepared)
        openais = FinalRequestOptions.construct(
            method="post", url="/chat/completions", content=prepared.content, **prepared.options
        )
        assert _fields(made) == _fields(openais)
        assert made.model_fields_set == openais.model_fields_set


def _fields(options: FinalRequestOptions) -> dict[str, Any]:
    """Each ``construct`` deep-copies its own ``NotGiven`` s, which compare by identity."""
    return {k: "NOT_GIVEN" if isinstance(v, NotGiven) else v for k, v in options.model_dump().items()}


class Point(pydantic.BaseModel):
    x: int


def messages_iter() -> Any:
    yield {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "m", "messages": tuple(MESSAGES)},  # a tuple: openai turns it into a list
        {"model": "m", "messages": messages_iter()},
        {"model": "m", "messages": [{"role": "user", "content": "hi", "name": NOT_GIVEN}]},
        {"model": "m", "messages": MESSAGES, "metadata": Point(x=1)},
        {"model": "m", "messages": MESSAGES, "response_format": Point},  # openai refuses it: use parse()
        {"model": "m", "messages": MESSAGES, "no_such_parameter": 1},
        {"messages": MESSAGES},  # openai's own create reports the missing model
        {"model": "m", "messages": MESSAGES, "extra_body": {"seed": omit}},  # openai drops omitted keys
        {"model": "m", "messages": MESSAGES, "extra_body": Point(x=1)},
        {"model": "m", "messages": MESSAGES, "metadata": {"at": datetime.datetime(2026, 12, 3)}},
        {"model": "m", "messages": MESSAGES, "metadata": {"tags": {"a"}}},
        {"model": "m", "messages": MESSAGES, "metadata": {"raw": b"x"}},
        {"model": "m", "messages": MESSAGES, "temperature": math.nan},
        {"model": "m", "messages": MESSAGES, "logit_bias": {50256: -100}},
        {"model": "m", "messages": [Message("user", "hi")]},
        {"model": "m", "messages": [{"role": "user", "content": ("a", "b")}]},
        {"model": "m", "messages": [{"role": Role.USER, "content": "hi"}]},
    ],
    ids=[
        "tuple",
        "iterator",
        "nested-not-given",
        "pydantic",
        "pydantic-class",
        "unknown-keyword",
        "no-model",
        "omit-in-extra-body",
        "pydantic-extra-body",
        "datetime",
        "set",
        "bytes",
        "nan",
        "int-key",
        "dataclass",
        "nested-tuple",
        "enum",
    ],
)
def test_anything_but_plain_json_goes_through_openais_create(kwargs: dict[str, Any]) -> None:
    """Refused at once, or found by the check create() makes before the body is used."""
    prepared = prepare(kwargs, CHAT)
    assert prepared is None or not prepared.plain()


INPUT: list[Any] = [
    {"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": "x"}]},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": 'ünïcode "quotes"'},
]
TOOLS: list[Any] = [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "o4-mini", "input": "hi"},
        {"model": "o4-mini", "input": INPUT, "tools": TOOLS, "tool_choice": "auto", "stream": True},
        {"input": INPUT, "instructions": "be brief", "reasoning": {"effort": "low", "summary": "auto"}},
        {"model": "m", "input": INPUT, "text": {"format": {"type": "json_schema", "name": "a", "schema": {}}}},
        {"model": "m", "input": "x", "previous_response_id": "resp_1", "store": False, "temperature": NOT_GIVEN},
    ],
)
def test_plain_responses_arguments_give_the_body_openai_would_send(kwargs: dict[str, Any]) -> None:
    prepared = prepare(kwargs, RESPONSES)
    assert prepared is not None and prepared.plain()
    assert msgspec.json.decode(prepared.content) == openai_body(kwargs, RESPONSES_PARAMS)
    assert prepared.stream is bool(kwargs.get("stream"))


def test_responses_arguments_openai_must_transform_take_its_create() -> None:
    prepared = prepare({"input": tuple(INPUT)}, RESPONSES)
    assert prepared is not None and not prepared.plain()
    assert prepare({"input": "x", "metadata": Point(x=1)}, RESPONSES) is None
    assert prepare({"input": "x", "messages": []}, RESPONSES) is None  # not a Responses keyword
