"""openai-agents (the OpenAI Agents SDK) on Codex: an ``Agent`` with a ``@function_tool``.

Both ways its docs show for a custom client: ``set_default_openai_client(AsyncCodexClient())``,
which runs on the Responses API (the SDK's default), and ``OpenAIChatCompletionsModel``.
Tracing is turned off as the SDK's docs say for non-OpenAI clients (it would upload to OpenAI).
Conversation state both ways its docs show on OpenAI's Conversations API: an
``OpenAIConversationsSession`` (the SDK reads the conversation's items and sends the whole
transcript, then adds the run's items with ``conversations.items.create``) and a server-managed
``conversation_id`` (the SDK sends ``conversation=`` and only the new input to ``responses.create``).
An ``OpenAIResponsesCompactionSession`` compacts a session's history with ``responses.compact``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import openai
import pytest
from ecosystem_support import INSTALL_HINT, Requests
from image_details import PNG_URL

from claif_cod import AsyncCodexClient

agents = pytest.importorskip("agents", reason=f"openai-agents is not installed ({INSTALL_HINT})")
from agents import (  # noqa: E402
    Agent,
    ModelRetrySettings,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIConversationsSession,
    OpenAIResponsesCompactionSession,
    Runner,
    SQLiteSession,
    ToolOutputImage,
    ToolOutputText,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models import _openai_shared  # noqa: E402

pytestmark = pytest.mark.codex

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    CALLS.append(city)
    return f"Sunny in {city}"


@pytest.fixture(autouse=True)
def _sdk_state() -> Iterator[None]:
    """The SDK's defaults are process-wide: every test starts and ends with the SDK's own."""
    set_tracing_disabled(True)
    CALLS.clear()
    yield
    _openai_shared.set_default_openai_client(None)  # type: ignore[arg-type]
    set_tracing_disabled(False)


def described(item: Mapping[str, Any]) -> tuple[str, str]:
    """A Responses item as ``(role, text)`` for a message, else ``(type, what it holds)``."""
    if item.get("type", "message") == "message":
        return item["role"], " ".join(part["text"] for part in item["content"])
    if item["type"] == "function_call":
        return "function_call", f"{item['name']} {item['arguments']}"
    if item["type"] == "function_call_output":
        return "function_call_output", item["output"]
    return item["type"], ""


async def test_chat_completions_model_answers(model: Requests) -> None:
    async with AsyncCodexClient(daemon="off") as client:
        agent = Agent(
            name="Assistant",
            instructions="AGENT-RULE-7",
            model=OpenAIChatCompletionsModel(model="o4-mini", openai_client=client),
        )
        result = await Runner.run(agent, "hello agents")

    assert result.final_output == "Echo: hello agents"
    [request] = model.since()
    assert any("AGENT-RULE-7" in text for text in request.developer_texts())


async def test_chat_completions_model_runs_a_function_tool(model: Requests) -> None:
    async with AsyncCodexClient(daemon="off") as client:
        agent = Agent(
            name="Assistant",
            model=OpenAIChatCompletionsModel(model="o4-mini", openai_client=client),
            tools=[get_weather],
        )
        result = await Runner.run(agent, 'Weather? [[call:get_weather {"city": "Paris"}]]')

    assert CALLS == ["Paris"]
    assert result.final_output == "Tool get_weather returned: Sunny in Paris"
    offered = model.since()[0].tool("get_weather")
    assert offered is not None
    assert offered["parameters"]["properties"]["city"]["type"] == "string"


async def test_default_client_on_the_responses_api_answers(model: Requests) -> None:
    set_default_openai_client(AsyncCodexClient(daemon="off"))
    agent = Agent(name="Assistant", instructions="AGENT-RULE-8", model="o4-mini")

    result = await Runner.run(agent, "hello responses")

    assert result.final_output == "Echo: hello responses"
    [request] = model.since()
    assert any("AGENT-RULE-8" in text for text in request.developer_texts())


async def test_default_client_on_the_responses_api_runs_a_function_tool(model: Requests) -> None:
    set_default_openai_client(AsyncCodexClient(daemon="off"))
    agent = Agent(name="Assistant", model="o4-mini", tools=[get_weather])

    result = await Runner.run(agent, 'Weather? [[call:get_weather {"city": "Oslo"}]]')

    assert CALLS == ["Oslo"]
    assert result.final_output == "Tool get_weather returned: Sunny in Oslo"
    assert model.since()[0].tool("get_weather") is not None


@function_tool
def take_screenshot() -> list[ToolOutputText | ToolOutputImage]:
    """A screenshot of the screen."""
    CALLS.append("screenshot")
    return [ToolOutputText(text="the screen"), ToolOutputImage(image_url=PNG_URL)]


async def test_a_tools_image_output_reaches_the_model_on_the_responses_api(model: Requests) -> None:
    set_default_openai_client(AsyncCodexClient(daemon="off"))
    agent = Agent(name="Assistant", model="o4-mini", tools=[take_screenshot])

    result = await Runner.run(agent, "Look. [[call:take_screenshot {}]]")

    assert CALLS == ["screenshot"]
    assert result.final_output == "Tool take_screenshot returned: the screen"
    _, answered = model.since()
    assert answered.images() == [PNG_URL]


async def test_a_conversation_continued_with_to_input_list_stays_on_its_codex_thread(model: Requests) -> None:
    """The SDK's multi-turn pattern re-sends the whole transcript: Codex continues the same thread."""
    set_default_openai_client(AsyncCodexClient(daemon="off"))
    agent = Agent(name="Assistant", instructions="AGENT-RULE-9", model="o4-mini")

    first = await Runner.run(agent, "first question")
    second = await Runner.run(agent, [*first.to_input_list(), {"role": "user", "content": "second question"}])

    assert second.final_output == "[turn 2] Echo: second question"
    one, two = model.since()
    assert two.body["prompt_cache_key"] == one.body["prompt_cache_key"]  # Codex's thread id: no new thread
    assert two.user_texts() == ["first question", "second question"]


async def test_a_conversation_with_a_tool_call_continued_with_to_input_list_stays_on_its_codex_thread(
    model: Requests,
) -> None:
    """After a run with a tool call (a call, its result, the answer), the next run's re-sent transcript
    continues the same Codex thread: nothing is injected again."""
    set_default_openai_client(AsyncCodexClient(daemon="off"))
    agent = Agent(name="Assistant", model="o4-mini", tools=[get_weather])

    first = await Runner.run(agent, 'Weather? [[call:get_weather {"city": "Lima"}]]')
    second = await Runner.run(agent, [*first.to_input_list(), {"role": "user", "content": "thanks"}])

    assert CALLS == ["Lima"]
    assert second.final_output == "[turn 2] Echo: thanks"
    requests = model.since()
    assert len({r.body["prompt_cache_key"] for r in requests}) == 1  # one Codex thread throughout
    assert len(requests[-1].function_calls()) == 1  # the thread's own call, not injected a second time


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_an_explicit_no_retry_budget_runs_on_a_client_copy(model: Requests, api: str) -> None:
    """With ``retry=ModelRetrySettings(max_retries=0)`` the SDK calls ``client.with_options(max_retries=0)``."""
    client = AsyncCodexClient(daemon="off")
    set_default_openai_client(client, use_for_tracing=False)
    settings = ModelSettings(retry=ModelRetrySettings(max_retries=0))
    chosen = "o4-mini" if api == "responses" else OpenAIChatCompletionsModel(model="o4-mini", openai_client=client)
    agent = Agent(name="Assistant", model=chosen, model_settings=settings)

    result = await Runner.run(agent, "no retries")

    assert result.final_output == "Echo: no retries"
    assert len(model.since()) == 1


async def test_an_openai_conversations_session_carries_the_first_run_into_the_second(model: Requests) -> None:
    """The session keeps each run's items in a conversation (``conversations.items.create``); the next
    run reads them back (``conversations.items.list``) and sends them before its own input."""
    async with AsyncCodexClient(daemon="off") as client:
        set_default_openai_client(client)
        agent = Agent(name="Assistant", instructions="AGENT-RULE-10", model="o4-mini")
        session = OpenAIConversationsSession(openai_client=client)

        first = await Runner.run(agent, "first question", session=session)
        second = await Runner.run(agent, "second question", session=session)
        items = await session.get_items()
        conversation = await client.conversations.retrieve(session.session_id)

    assert first.final_output == "Echo: first question"
    assert second.final_output == "[turn 2] Echo: second question"
    one, two = model.since()
    assert one.messages() == [("user", "first question")]
    assert two.messages() == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
    ]
    assert any("AGENT-RULE-10" in text for text in two.developer_texts())
    assert [described(item) for item in items] == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
        ("assistant", "[turn 2] Echo: second question"),
    ]
    assert len({item["id"] for item in items}) == 4  # type: ignore[typeddict-item]  # each has an id of its own
    assert conversation.id == session.session_id


async def test_an_openai_conversations_session_pops_items_and_clears(model: Requests) -> None:
    """The SDK's docs' correction: ``pop_item()`` twice takes the last reply and question back, and the
    next run goes on from the earlier items; ``clear_session()`` deletes the conversation, and the
    session starts a new one on its next use."""
    async with AsyncCodexClient(daemon="off") as client:
        set_default_openai_client(client)
        agent = Agent(name="Assistant", model="o4-mini")
        session = OpenAIConversationsSession(openai_client=client)
        await Runner.run(agent, "first question", session=session)
        await Runner.run(agent, "second question", session=session)

        reply = await session.pop_item()
        question = await session.pop_item()
        corrected = await Runner.run(agent, "corrected question", session=session)
        after_correction = await session.get_items()

        cleared_id = session.session_id
        await session.clear_session()
        with pytest.raises(openai.NotFoundError):
            await client.conversations.retrieve(cleared_id)
        assert await session.get_items() == []  # a new, empty conversation
        fresh = await Runner.run(agent, "fresh start", session=session)
        after_clear = await session.get_items()
        fresh_id = session.session_id

    assert reply is not None and described(reply) == ("assistant", "[turn 2] Echo: second question")
    assert question is not None and described(question) == ("user", "second question")
    assert corrected.final_output == "[turn 2] Echo: corrected question"
    assert [described(item) for item in after_correction] == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "corrected question"),
        ("assistant", "[turn 2] Echo: corrected question"),
    ]
    assert fresh_id != cleared_id
    assert fresh.final_output == "Echo: fresh start"
    assert [described(item) for item in after_clear] == [("user", "fresh start"), ("assistant", "Echo: fresh start")]
    *_, correcting, starting_afresh = model.since()
    assert correcting.messages() == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "corrected question"),
    ]
    assert starting_afresh.messages() == [("user", "fresh start")]


async def test_an_openai_conversations_session_keeps_a_function_tools_call_and_output(model: Requests) -> None:
    """A run with a tool call stores the call and its output as conversation items; the next run sends
    them back, and Codex goes on with the same call (nothing injected twice)."""
    async with AsyncCodexClient(daemon="off") as client:
        set_default_openai_client(client)
        agent = Agent(name="Assistant", model="o4-mini", tools=[get_weather])
        session = OpenAIConversationsSession(openai_client=client)

        first = await Runner.run(agent, 'Weather? [[call:get_weather {"city": "Rome"}]]', session=session)
        second = await Runner.run(agent, "thanks", session=session)
        items = await session.get_items()

    assert CALLS == ["Rome"]
    assert first.final_output == "Tool get_weather returned: Sunny in Rome"
    assert second.final_output == "[turn 2] Echo: thanks"
    assert [described(item) for item in items] == [
        ("user", 'Weather? [[call:get_weather {"city": "Rome"}]]'),
        ("function_call", 'get_weather {"city": "Rome"}'),
        ("function_call_output", "Sunny in Rome"),
        ("assistant", "Tool get_weather returned: Sunny in Rome"),
        ("user", "thanks"),
        ("assistant", "[turn 2] Echo: thanks"),
    ]
    call, output = items[1], items[2]
    assert call["call_id"] == output["call_id"]  # type: ignore[typeddict-item]
    last = model.since()[-1]
    assert last.user_texts() == ['Weather? [[call:get_weather {"city": "Rome"}]]', "thanks"]
    [sent_call] = last.function_calls()
    assert (sent_call.name, sent_call.arguments) == ("get_weather", '{"city": "Rome"}')
    assert [(o.call_id, o.output) for o in last.function_outputs()] == [(sent_call.call_id, "Sunny in Rome")]


async def test_a_server_managed_conversation_id_carries_the_first_run_into_the_second(model: Requests) -> None:
    """``Runner.run(..., conversation_id=)``: the SDK sends ``conversation=`` and only the run's new
    input; claif_cod puts the conversation's items before it and adds the input and the reply to it."""
    async with AsyncCodexClient(daemon="off") as client:
        set_default_openai_client(client)
        agent = Agent(name="Assistant", instructions="AGENT-RULE-11", model="o4-mini")
        conversation = await client.conversations.create()

        first = await Runner.run(agent, "alpha question", conversation_id=conversation.id)
        second = await Runner.run(agent, "beta question", conversation_id=conversation.id)
        items = [item.model_dump() async for item in client.conversations.items.list(conversation.id, order="asc")]
        assert second.last_response_id is not None
        response = await client.responses.retrieve(second.last_response_id)
        sent = await client.responses.input_items.list(second.last_response_id)

    assert first.final_output == "Echo: alpha question"
    assert second.final_output == "[turn 2] Echo: beta question"
    # What the SDK sent: the conversation by its id, and only the new question.
    assert response.conversation is not None and response.conversation.id == conversation.id
    assert [described(item.model_dump()) for item in sent.data] == [("user", "beta question")]
    # What the model received: the conversation's items first.
    one, two = model.since()
    assert one.messages() == [("user", "alpha question")]
    assert two.messages() == [
        ("user", "alpha question"),
        ("assistant", "Echo: alpha question"),
        ("user", "beta question"),
    ]
    assert any("AGENT-RULE-11" in text for text in two.developer_texts())
    assert [described(item) for item in items] == [
        ("user", "alpha question"),
        ("assistant", "Echo: alpha question"),
        ("user", "beta question"),
        ("assistant", "[turn 2] Echo: beta question"),
    ]


async def test_a_server_managed_conversation_id_keeps_a_function_tools_call_and_output(model: Requests) -> None:
    """Within a run the SDK sends the tool's output alone with ``conversation=``: the call it answers
    is already one of the conversation's items. The next run finds the call and output there too."""
    async with AsyncCodexClient(daemon="off") as client:
        set_default_openai_client(client)
        agent = Agent(name="Assistant", model="o4-mini", tools=[get_weather])
        conversation = await client.conversations.create()

        first = await Runner.run(
            agent, 'Weather? [[call:get_weather {"city": "Kyiv"}]]', conversation_id=conversation.id
        )
        second = await Runner.run(agent, "thanks", conversation_id=conversation.id)
        items = [item.model_dump() async for item in client.conversations.items.list(conversation.id, order="asc")]
        sent = [
            [described(item.model_dump()) for item in (await client.responses.input_items.list(raw.response_id)).data]
            for raw in first.raw_responses
            if raw.response_id is not None
        ]

    assert CALLS == ["Kyiv"]
    assert first.final_output == "Tool get_weather returned: Sunny in Kyiv"
    assert second.final_output == "[turn 2] Echo: thanks"
    assert sent == [
        [("user", 'Weather? [[call:get_weather {"city": "Kyiv"}]]')],
        [("function_call_output", "Sunny in Kyiv")],
    ]
    assert [described(item) for item in items] == [
        ("user", 'Weather? [[call:get_weather {"city": "Kyiv"}]]'),
        ("function_call", 'get_weather {"city": "Kyiv"}'),
        ("function_call_output", "Sunny in Kyiv"),
        ("assistant", "Tool get_weather returned: Sunny in Kyiv"),
        ("user", "thanks"),
        ("assistant", "[turn 2] Echo: thanks"),
    ]
    last = model.since()[-1]
    assert last.user_texts() == ['Weather? [[call:get_weather {"city": "Kyiv"}]]', "thanks"]
    [sent_call] = last.function_calls()
    assert [(o.call_id, o.output) for o in last.function_outputs()] == [(sent_call.call_id, "Sunny in Kyiv")]


@pytest.mark.parametrize("mode", ["previous_response_id", "input"])
async def test_a_responses_compaction_session_compacts_the_history_and_goes_on(model: Requests, mode: str) -> None:
    """After each run the session asks ``responses.compact`` (here every time) and keeps what it answers:
    the user messages and a compaction item, which the next run sends back as the summary."""
    async with AsyncCodexClient(daemon="off") as client:
        set_default_openai_client(client)
        agent = Agent(name="Assistant", instructions="AGENT-RULE-12", model="o4-mini")
        session = OpenAIResponsesCompactionSession(
            "compacted",
            SQLiteSession("compacted"),
            client=client,
            model="o4-mini",
            compaction_mode=mode,  # type: ignore[arg-type]
            should_trigger_compaction=lambda context: True,
        )
        first = await Runner.run(agent, "first question", session=session)
        kept = await session.get_items()
        second = await Runner.run(agent, "second question", session=session)

    assert first.final_output == "Echo: first question"
    assert [described(item)[0] for item in kept] == ["user", "compaction"]
    assert second.final_output.endswith("Echo: second question")
    run, compacting, again, compacting_again = model.since()  # each run is followed by a compaction
    assert compacting.user_texts()[-1].startswith("Compact this conversation")
    assert ("assistant", "Echo: first question") in compacting.messages()
    assert ("assistant", "Echo: first question") not in again.messages()  # compacted away
    assert any(text.startswith("The conversation before this point was compacted") for text in again.user_texts())
    assert again.user_texts()[-1] == "second question" and "first question" in again.user_texts()
    assert compacting_again.user_texts()[-1].startswith("Compact this conversation")
    assert run.user_texts() == ["first question"]
