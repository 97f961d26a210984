"""Reasoning summaries streamed as OpenAI's ``response.reasoning_summary_*`` events (in-process engine)."""

from __future__ import annotations

import pytest
from responses_events import ONE_PART, TWO_PARTS, check_reasoning_stream

from claif_cod import AsyncCodexClient, CodexClient

pytestmark = pytest.mark.codex


@pytest.mark.parametrize(("marker", "parts"), [("[[reasoning]]", ONE_PART), ("[[reasoning:2]]", TWO_PARTS)])
def test_summary_parts_stream_as_deltas(client: CodexClient, marker: str, parts: list[str]) -> None:
    """``[[reasoning]]``: Codex streams text deltas only (no part announced); ``[[reasoning:2]]``: two parts."""
    with client.responses.create(input=f"think {marker}", reasoning={"summary": "auto"}, stream=True) as stream:
        events = list(stream)
    check_reasoning_stream(events, parts)


async def test_async_stream_and_the_whole_response_agree(aclient: AsyncCodexClient) -> None:
    stream = await aclient.responses.create(input="think [[reasoning:2]]", reasoning={"summary": "auto"}, stream=True)
    events = [event async for event in stream]
    check_reasoning_stream(events, TWO_PARTS)
    whole = await aclient.responses.create(input="think [[reasoning:2]]", reasoning={"summary": "auto"})
    assert [s.text for s in whole.output[0].summary] == TWO_PARTS  # type: ignore[union-attr]
    assert whole.usage is not None and whole.usage.output_tokens_details.reasoning_tokens == 10  # 5 words a part
