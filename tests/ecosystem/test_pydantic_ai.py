"""pydantic-ai on Codex: ``OpenAIChatModel`` with ``OpenAIProvider(openai_client=AsyncCodexClient())``,
as its docs show for a custom OpenAI client; ``output_type=`` in its default (tool) mode,
``@agent.tool_plain``, and ``OpenAIResponsesModel`` continuing a conversation on one Codex thread."""

from __future__ import annotations

import pytest
from ecosystem_support import INSTALL_HINT, Requests
from pydantic import BaseModel

from claif_cod import AsyncCodexClient

pytest.importorskip("pydantic_ai", reason=f"pydantic-ai is not installed ({INSTALL_HINT})")
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

pytestmark = pytest.mark.codex


class City(BaseModel):
    name: str
    country: str


def codex_model(client: AsyncCodexClient) -> OpenAIChatModel:
    return OpenAIChatModel("o4-mini", provider=OpenAIProvider(openai_client=client))


async def test_text_output(model: Requests) -> None:
    async with AsyncCodexClient(daemon="off") as client:
        agent = Agent(codex_model(client), instructions="PAI-RULE-5")
        result = await agent.run("hello pydantic")

    assert result.output == "Echo: hello pydantic"
    assert any("PAI-RULE-5" in text for text in model.since()[0].developer_texts())


async def test_output_type_in_the_default_tool_mode(model: Requests) -> None:
    async with AsyncCodexClient(daemon="off") as client:
        agent = Agent(codex_model(client), output_type=City)
        result = await agent.run('Where? [[call:final_result {"name": "Lyon", "country": "France"}]]')

    assert result.output == City(name="Lyon", country="France")
    offered = model.since()[0].tool("final_result")  # pydantic-ai's output tool carries the schema
    assert offered is not None
    assert sorted(offered["parameters"]["properties"]) == ["country", "name"]


async def test_tool_plain_round_trip(model: Requests) -> None:
    rolls: list[int] = []
    async with AsyncCodexClient(daemon="off") as client:
        agent = Agent(codex_model(client))

        @agent.tool_plain
        def roll_die(sides: int) -> str:
            """Roll a die with this many sides."""
            rolls.append(sides)
            return "rolled a 4"

        result = await agent.run('Roll it [[call:roll_die {"sides": 6}]]')

    assert rolls == [6]
    assert result.output == "Tool roll_die returned: rolled a 4"


async def test_a_conversation_on_the_responses_api_stays_on_its_codex_thread(model: Requests) -> None:
    """``OpenAIResponsesModel`` re-sends the whole history (``message_history=``) each run, a tool call
    and its result included: Codex continues one thread, with nothing injected again."""
    from pydantic_ai.models.openai import OpenAIResponsesModel

    async with AsyncCodexClient(daemon="off") as client:
        agent = Agent(OpenAIResponsesModel("o4-mini", provider=OpenAIProvider(openai_client=client)))

        @agent.tool_plain
        def look_up(key: str) -> str:
            """Look a key up."""
            return f"value of {key}"

        first = await agent.run('Look it up [[call:look_up {"key": "k1"}]]')
        second = await agent.run("thanks", message_history=first.all_messages())

    assert first.output == "Tool look_up returned: value of k1"
    assert second.output == "[turn 2] Echo: thanks"
    requests = model.since()
    assert len({r.body["prompt_cache_key"] for r in requests}) == 1  # one Codex thread throughout
    assert len(requests[-1].function_calls()) == 1  # the thread's own call, not injected a second time
