"""The objects create() returns are the ones openai's own pipeline builds from the same replies:
pydantic's validation (claif_cod.openai_objects: ``from_json`` for a reply, ``event_from_json`` for
each streamed chunk or event) against openai's ``construct_type``, compared field by field, type by
type, on real replies of every shape claif_cod sends."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from chat_messages import user
from openai._models import construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from test_tools import PARALLEL, TOOLS

from claif_cod import CodexClient
from claif_cod.openai_objects import EVENTS, VALIDATED, event_from_json, from_json

pytestmark = pytest.mark.codex


def shape(value: Any) -> Any:
    """What a caller sees of an object openai returns: its class, which of its fields were set, its
    extra keys, and (recursively) their values, with each scalar's exact type.  (pydantic's
    validation also lists the extra keys in ``model_fields_set``, where openai's ``construct_type``
    leaves them out; dumps, ``exclude_unset`` ones too, are the same.)"""
    if isinstance(value, openai.BaseModel):
        fields = {name: shape(getattr(value, name)) for name in type(value).model_fields}
        extra = {name: shape(v) for name, v in (value.model_extra or {}).items()}
        was_set = frozenset(value.model_fields_set - extra.keys())
        unset = value.model_dump(exclude_unset=True)
        return (type(value), was_set, fields, extra, unset, getattr(value, "_request_id", "unset"))
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return (type(value), value)


def built_by_openai(cast_to: type[openai.BaseModel], body: bytes) -> Any:
    parsed = construct_type(type_=cast_to, value=json.loads(body))
    parsed._request_id = None
    return parsed


CHAT_REPLIES: list[dict[str, Any]] = [
    {"messages": [user("plain words")]},
    {"messages": [user("two of them")], "n": 2},
    {"messages": [user("[[reasoning]] thought first")]},
    {"messages": [user("[[long:400]] cut")], "max_completion_tokens": 5},
    {"messages": [user(PARALLEL)], "tools": TOOLS},
    {"messages": [user("unknown knob")], "temperature": 0.3, "logprobs": True},
    {"messages": [user("json please")], "response_format": {"type": "json_object"}},
]


@pytest.mark.parametrize("params", CHAT_REPLIES, ids=lambda p: str(p["messages"][0]["content"])[:20])
def test_a_chat_completion_is_the_one_openai_builds(client: CodexClient, params: dict[str, Any]) -> None:
    body = client.chat.completions.with_raw_response.create(**params).http_response.content
    assert shape(from_json(ChatCompletion, body)) == shape(built_by_openai(ChatCompletion, body))


@pytest.mark.parametrize("params", CHAT_REPLIES, ids=lambda p: str(p["messages"][0]["content"])[:20])
def test_every_streamed_chunk_is_the_one_openai_builds(client: CodexClient, params: dict[str, Any]) -> None:
    with client.chat.completions.with_streaming_response.create(
        **params, stream=True, stream_options={"include_usage": True}
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert lines
    for line in lines:
        data = line.removeprefix("data: ").encode()
        ours = event_from_json(client, ChatCompletionChunk, data, response.http_response)
        assert shape(ours) == shape(construct_type(type_=ChatCompletionChunk, value=json.loads(data)))


RESPONSES_REPLIES: list[dict[str, Any]] = [
    {"input": "plain words"},
    {"input": "[[reasoning]] thought first", "reasoning": {"effort": "low", "summary": "auto"}},
    {
        "input": PARALLEL,
        "tools": [
            {"type": "function", "name": "get_weather", "parameters": {}},
            {"type": "function", "name": "get_time", "parameters": {}},
        ],
    },
    {"input": "[[incomplete]] cut", "max_output_tokens": 16},
    {"input": "with a shape", "text": {"format": {"type": "json_object"}}, "metadata": {"k": "v"}},
]
RESPONSES_IDS = ["plain", "reasoning", "tools", "incomplete", "format"]


@pytest.mark.parametrize("params", RESPONSES_REPLIES, ids=RESPONSES_IDS)
def test_a_response_is_the_one_openai_builds(client: CodexClient, params: dict[str, Any]) -> None:
    body = client.responses.with_raw_response.create(**params).http_response.content
    assert shape(from_json(Response, body)) == shape(built_by_openai(Response, body))


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # dumping openai's unvalidated object
def test_a_reply_that_does_not_validate_is_built_as_openai_builds_it() -> None:
    body = b'{"id": "x", "object": "chat.completion", "created": "soon", "model": "m", "choices": [{"odd": 1}]}'
    built = from_json(ChatCompletion, body)
    assert built.created == "soon" and shape(built) == shape(built_by_openai(ChatCompletion, body))


def test_only_the_compared_types_are_validated() -> None:
    assert {ChatCompletion, ChatCompletionChunk, Response} == VALIDATED


def test_every_responses_stream_event_is_the_one_openai_builds(client: CodexClient) -> None:
    seen: set[str] = set()
    for params in [*RESPONSES_REPLIES, {"input": "[[flaky]] no luck"}]:  # [[flaky]]: fails after its first output
        with client.responses.with_streaming_response.create(**params, stream=True) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: {")]
        for line in lines:
            data = line.removeprefix("data: ").encode()
            seen.add(json.loads(data)["type"])
            ours = event_from_json(client, ResponseStreamEvent, data, response.http_response)
            assert shape(ours) == shape(construct_type(type_=ResponseStreamEvent, value=json.loads(data)))
    assert seen == set(EVENTS)  # every event type claif_cod sends was compared
