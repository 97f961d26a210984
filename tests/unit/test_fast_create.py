"""The create() fast path builds exactly the body openai's own transform would, or steps aside."""

from __future__ import annotations

from typing import Any

import msgspec
import pydantic
import pytest
from openai import NOT_GIVEN, omit
from openai._utils import maybe_transform
from openai.types.chat import completion_create_params

from claif_cod.fast_create import prepare

MESSAGES: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "me"},
    {"role": "assistant", "content": "hello", "tool_calls": None},
    {"role": "user", "content": 'more ünïcode \u2028 "quotes"'},
]


def openai_body(kwargs: dict[str, Any]) -> Any:
    params = {k: v for k, v in kwargs.items() if not k.startswith("extra_") and k != "timeout"}
    kind = (
        completion_create_params.CompletionCreateParamsStreaming
        if params.get("stream")
        else completion_create_params.CompletionCreateParamsNonStreaming
    )
    return {k: v for k, v in maybe_transform(params, kind).items() if v is not NOT_GIVEN and v is not omit}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "o4-mini", "messages": MESSAGES},
        {"model": "o4-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        {"model": "m", "messages": MESSAGES, "n": 2, "stop": ["x"], "temperature": 0.5, "seed": 1, "user": "u"},
        {"model": "m", "messages": MESSAGES, "response_format": {"type": "json_schema", "json_schema": {"name": "a"}}},
        {"model": "m", "messages": MESSAGES, "temperature": NOT_GIVEN, "top_p": omit, "timeout": 3.0},
    ],
)
def test_plain_arguments_give_the_body_openai_would_send(kwargs: dict[str, Any]) -> None:
    prepared = prepare(kwargs)
    assert prepared is not None
    assert prepared.body is None and prepared.content is not None
    assert msgspec.json.decode(prepared.content) == openai_body(kwargs)
    assert prepared.stream is bool(kwargs.get("stream"))
    assert prepared.options.get("timeout", NOT_GIVEN) == kwargs.get("timeout", NOT_GIVEN)


def test_request_options_are_openais() -> None:
    prepared = prepare(
        {
            "model": "m",
            "messages": MESSAGES,
            "extra_headers": {"X-A": "1"},
            "extra_query": {"q": "2"},
            "extra_body": {"temperature": 0.1},
        }
    )
    assert prepared is not None
    body, content, options, _ = prepared
    assert body == {"model": "m", "messages": MESSAGES}  # a mapping, so openai merges extra_body into it
    assert content is None
    assert options["headers"] == {"X-A": "1"}
    assert options["params"] == {"q": "2"}
    assert options["extra_json"] == {"temperature": 0.1}


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
    ],
    ids=["tuple", "iterator", "nested-not-given", "pydantic", "pydantic-class", "unknown-keyword", "no-model"],
)
def test_anything_but_plain_json_goes_through_openais_create(kwargs: dict[str, Any]) -> None:
    assert prepare(kwargs) is None
