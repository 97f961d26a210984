"""langchain-openai's ``ChatOpenAI`` against ``claif-codd serve --http``, as its docs show for an
OpenAI-compatible server (``base_url``): chat, streaming, ``bind_tools`` and ``with_structured_output``."""

from __future__ import annotations

import pytest
from ecosystem_support import INSTALL_HINT, Requests
from pydantic import BaseModel

pytest.importorskip("langchain_openai", reason=f"langchain-openai is not installed ({INSTALL_HINT})")
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

pytestmark = pytest.mark.codex


class Person(BaseModel):
    """A person the text talks about."""

    name: str
    age: int


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def chat(http_url: str) -> ChatOpenAI:
    return ChatOpenAI(model="o4-mini", base_url=http_url, api_key="unused", max_retries=0)  # type: ignore[arg-type]


def test_invoke_answers(http_url: str, model: Requests) -> None:
    reply = chat(http_url).invoke([SystemMessage("LC-RULE-3"), HumanMessage("hello langchain")])

    assert isinstance(reply, AIMessage)
    assert reply.content == "Echo: hello langchain"
    [request] = model.since()
    assert any("LC-RULE-3" in text for text in request.developer_texts())


def test_stream_yields_the_reply_in_chunks(http_url: str, model: Requests) -> None:
    chunks = list(chat(http_url).stream("one two three"))

    assert len([c for c in chunks if c.content]) > 1
    assert "".join(str(c.content) for c in chunks) == "Echo: one two three"


def test_with_structured_output_default_mode_parses_the_schema(http_url: str, model: Requests) -> None:
    structured = chat(http_url).with_structured_output(Person)  # json_schema: Codex's outputSchema

    person = structured.invoke('Who? [[reply:{"name": "Ada", "age": 36}]]')

    assert person == Person(name="Ada", age=36)
    [request] = model.since()
    schema = request.body["text"]["format"]["schema"]
    assert sorted(schema["properties"]) == ["age", "name"]


def test_a_structured_answer_after_the_assistants_own_message(http_url: str, model: Requests) -> None:
    """What langgraph's ``create_react_agent(..., response_format=...)`` asks once its agent has
    answered: the conversation as it stands, ending with the agent's message, for a structured answer."""
    ask = HumanMessage('Who? [[reply:{"name": "Ada", "age": 36}]]')
    said = chat(http_url).invoke([ask])

    person = chat(http_url).with_structured_output(Person).invoke([ask, said])

    assert person == Person(name="Ada", age=36)
    first, second = model.since()
    assert second.body["input"][-1]["role"] == "assistant"  # answered after it, with no message made up
    assert second.body["prompt_cache_key"] == first.body["prompt_cache_key"]  # on the agent's own thread


def test_with_structured_output_function_calling_mode(http_url: str, model: Requests) -> None:
    structured = chat(http_url).with_structured_output(Person, method="function_calling")

    person = structured.invoke('Who? [[call:Person {"name": "Ada", "age": 36}]]')

    assert person == Person(name="Ada", age=36)
    assert model.since()[0].tool("Person") is not None


def test_bind_tools_round_trip(http_url: str, model: Requests) -> None:
    llm = chat(http_url).bind_tools([multiply])
    messages: list[object] = [HumanMessage('Six times seven? [[call:multiply {"a": 6, "b": 7}]]')]

    ai = llm.invoke(messages)  # type: ignore[arg-type]
    assert isinstance(ai, AIMessage)
    [call] = ai.tool_calls
    assert (call["name"], call["args"]) == ("multiply", {"a": 6, "b": 7})
    messages += [ai, multiply.invoke(call)]  # the ToolMessage with the result, as langchain's docs do
    final = llm.invoke(messages)  # type: ignore[arg-type]

    assert final.content == "Tool multiply returned: 42"
    assert [(c.name, c.arguments) for c in model.since()[-1].function_calls()] == [("multiply", '{"a": 6, "b": 7}')]


def test_responses_api_bind_tools_round_trip(http_url: str, model: Requests) -> None:
    """What langchain does for any model whose name contains "codex": the same, over /v1/responses."""
    llm = ChatOpenAI(
        model="o4-mini", base_url=http_url, api_key="unused", max_retries=0, use_responses_api=True
    ).bind_tools([multiply])  # type: ignore[arg-type]
    messages: list[object] = [HumanMessage('Six times seven? [[call:multiply {"a": 6, "b": 7}]]')]

    ai = llm.invoke(messages)  # type: ignore[arg-type]
    assert isinstance(ai, AIMessage)
    [call] = ai.tool_calls
    assert (call["name"], call["args"]) == ("multiply", {"a": 6, "b": 7})
    messages += [ai, multiply.invoke(call)]
    final = llm.invoke(messages)  # type: ignore[arg-type]

    assert final.text == "Tool multiply returned: 42"
    assert ai.response_metadata["object"] == "response"  # answered by /v1/responses, not chat completions


def test_responses_api_conversation_stays_on_its_codex_thread(http_url: str, model: Requests) -> None:
    """langchain re-sends the whole conversation each call; over /v1/responses the daemon continues
    the same Codex thread, as it does for chat completions."""
    llm = ChatOpenAI(model="o4-mini", base_url=http_url, api_key="unused", max_retries=0, use_responses_api=True)  # type: ignore[arg-type]
    messages: list[object] = [SystemMessage("LC-RULE-5"), HumanMessage("first")]
    first = llm.invoke(messages)  # type: ignore[arg-type]
    messages += [first, HumanMessage("second")]
    second = llm.invoke(messages)  # type: ignore[arg-type]

    assert second.text == "[turn 2] Echo: second"
    one, two = model.since()
    assert two.body["prompt_cache_key"] == one.body["prompt_cache_key"]  # Codex's thread id: no new thread
    assert two.user_texts() == ["first", "second"]
