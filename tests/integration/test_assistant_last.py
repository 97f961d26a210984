"""A conversation that ends with the assistant's own message is answered again, as OpenAI's is:
langgraph's agent asks so for its structured answer, after the agent's last message. So is one of
system or developer messages only (a whole prompt sent as the system message), in chat and
Responses alike."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

ASK = 'Who? [[reply:{"name": "Ada", "age": 36}]]'
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "Person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
}


def test_chat_answers_after_its_own_message_on_the_same_thread(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": ASK}])
    said = first.choices[0].message.content or ""
    again = client.chat.completions.create(
        model="o4-mini",
        messages=[{"role": "user", "content": ASK}, {"role": "assistant", "content": said}],
        response_format=PERSON,  # type: ignore[arg-type]
    )
    assert again.choices[0].message.content == '{"name": "Ada", "age": 36}'
    before, after = codex_model_server.requests
    assert after.body["prompt_cache_key"] == before.body["prompt_cache_key"]  # the warm thread, not a new one
    last = after.body["input"][-1]
    assert last["role"] == "assistant" and said in str(last["content"])  # no user message made up after it
    assert after.body["text"]["format"]["type"] == "json_schema"


def test_responses_answer_after_an_assistant_message(client: CodexClient, codex_model_server: ModelServer) -> None:
    response = client.responses.create(
        model="o4-mini", input=[{"role": "user", "content": ASK}, {"role": "assistant", "content": "Ada, 36."}]
    )
    assert response.output_text == '{"name": "Ada", "age": 36}'
    [request] = codex_model_server.requests
    assert request.body["input"][-1]["role"] == "assistant"


@pytest.mark.parametrize("stream", [False, True])
def test_chat_answers_instructions_alone(client: CodexClient, codex_model_server: ModelServer, stream: bool) -> None:
    """OpenAI answers a request of system (or developer) messages only; it was refused as a
    BadRequestError ("the last non-system message must come from the user or a tool")."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Write a haiku about rain."},
        {"role": "developer", "content": "Be terse."},
    ]
    if stream:
        chunks = client.chat.completions.create(model="o4-mini", messages=messages, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        completion = client.chat.completions.create(model="o4-mini", messages=messages)
        assert completion.choices[0].finish_reason == "stop"
        text = completion.choices[0].message.content or ""
    assert text.startswith("Echo:")  # the test model's answer to a request with no user text
    [request] = codex_model_server.requests
    assert request.user_texts() == []  # no user message made up
    instructions = "\n".join(request.developer_texts())
    assert "Write a haiku about rain." in instructions and "Be terse." in instructions


@pytest.mark.parametrize(
    "ask",
    [
        {"input": [{"role": "system", "content": "Write a haiku about rain."}]},
        {"input": [{"role": "developer", "content": "Be terse."}], "instructions": "Write a haiku about rain."},
    ],
    ids=["system message", "developer message and instructions"],
)
def test_responses_answer_instructions_alone(
    client: CodexClient, codex_model_server: ModelServer, ask: dict[str, object]
) -> None:
    """As chat answers them: it was a BadRequestError ("input must end with a user or assistant message...")."""
    response = client.responses.create(model="o4-mini", **ask)  # type: ignore[arg-type]
    assert response.status == "completed" and response.output_text.startswith("Echo:")
    [request] = codex_model_server.requests
    assert request.user_texts() == []
    assert "Write a haiku about rain." in "\n".join(request.developer_texts())


def test_a_named_session_still_needs_a_user_message_last(client: CodexClient) -> None:
    """A session keeps its turns as the user's message and the answer, to re-seed its thread."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            extra_body={"session_id": "kept"},
        )
    assert info.value.param == "messages" and "end with a user message" in info.value.message  # type: ignore[attr-defined]
