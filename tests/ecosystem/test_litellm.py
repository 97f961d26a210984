"""litellm against ``claif-codd serve --http``, as its docs show for an OpenAI-compatible endpoint
(``model="openai/<name>"`` with ``api_base``)."""

from __future__ import annotations

import json
import os

import pytest
from ecosystem_support import INSTALL_HINT, Requests

# litellm fetches its model price map from the network at import time unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm", reason=f"litellm is not installed ({INSTALL_HINT})")

pytestmark = pytest.mark.codex

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_completion_answers(http_url: str, model: Requests) -> None:
    response = litellm.completion(
        model="openai/o4-mini",
        api_base=http_url,
        api_key="unused",
        messages=[{"role": "user", "content": "hello litellm"}],
    )

    assert response.choices[0].message.content == "Echo: hello litellm"
    assert response.usage.completion_tokens == 3
    assert len(model.since()) == 1


def test_streaming_completion(http_url: str, model: Requests) -> None:
    stream = litellm.completion(
        model="openai/o4-mini",
        api_base=http_url,
        api_key="unused",
        stream=True,
        messages=[{"role": "user", "content": "one two three"}],
    )

    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)

    assert text == "Echo: one two three"


def test_tool_call_round_trip(http_url: str, model: Requests) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": 'Weather? [[call:get_weather {"city": "Rome"}]]'}]
    first = litellm.completion(
        model="openai/o4-mini", api_base=http_url, api_key="unused", messages=messages, tools=[WEATHER_TOOL]
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Rome"})

    messages += [
        first.choices[0].message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny in Rome"},
    ]
    final = litellm.completion(
        model="openai/o4-mini", api_base=http_url, api_key="unused", messages=messages, tools=[WEATHER_TOOL]
    )

    assert final.choices[0].message.content == "Tool get_weather returned: Sunny in Rome"


def test_responses_continued_by_previous_response_id(http_url: str, model: Requests) -> None:
    """``litellm.responses`` sends its own HTTP requests (a ``client=`` is not used for it): with
    ``api_base`` it reaches the daemon's endpoint, and a response is continued on its Codex thread."""
    first = litellm.responses(model="openai/o4-mini", api_base=http_url, api_key="unused", input="one")
    second = litellm.responses(
        model="openai/o4-mini", api_base=http_url, api_key="unused", input="two", previous_response_id=first.id
    )

    assert (first.output_text, second.output_text) == ("Echo: one", "[turn 2] Echo: two")
    assert [request.user_texts() for request in model.since()] == [["one"], ["one", "two"]]
