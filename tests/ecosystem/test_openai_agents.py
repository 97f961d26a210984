"""openai-agents (the OpenAI Agents SDK) on Codex: an ``Agent`` with a ``@function_tool``.

Both ways its docs show for a custom client: ``set_default_openai_client(AsyncCodexClient())``,
which runs on the Responses API (the SDK's default), and ``OpenAIChatCompletionsModel``.
Tracing is turned off as the SDK's docs say for non-OpenAI clients (it would upload to OpenAI).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ecosystem_support import INSTALL_HINT, Requests

from claif_cod import AsyncCodexClient

agents = pytest.importorskip("agents", reason=f"openai-agents is not installed ({INSTALL_HINT})")
from agents import (  # noqa: E402
    Agent,
    ModelRetrySettings,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
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
