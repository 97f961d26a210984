"""Reasoning summaries streamed as OpenAI's ``response.reasoning_summary_*`` events (in-process engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from responses_events import ONE_PART, TWO_PARTS, check_reasoning_stream

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer
from claif_cod.testing.codex_home import write_codex_home

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


def test_a_message_of_a_request_codex_retried_holds_nothing_and_the_answer_is_said_once(
    tmp_path: Path, codex_model_server: ModelServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[[flaky]]`` drops the first attempt after two deltas; Codex retries and the answer comes as new items.
    Streamed, the abandoned message (its deltas cannot be taken back) ends ``incomplete`` and empty, so
    ``output_text`` holds the answer once; the whole response leaves it out, as nobody saw it."""
    home = write_codex_home(tmp_path / "home", codex_model_server.url, stream_max_retries=1)
    monkeypatch.setenv("CODEX_HOME", str(home))
    ask = {"model": "o4-mini", "input": "think [[reasoning:1]] [[flaky]] a b c", "reasoning": {"summary": "auto"}}
    with CodexClient(daemon="off") as client:
        with client.responses.create(**ask, stream=True) as stream:  # type: ignore[call-overload]
            events = list(stream)
        whole = client.responses.create(**{**ask, "input": "think [[flaky]] d e"})  # type: ignore[call-overload]
    assert len(codex_model_server.requests) == 4  # each tried twice ([[flaky]] fails a prompt's first attempt)
    final = events[-1].response  # type: ignore[union-attr]
    assert events[-1].type == "response.completed"
    messages = [item for item in final.output if item.type == "message"]
    abandoned, answer = messages
    streamed = {
        m.id: "".join(e.delta for e in events if e.type == "response.output_text.delta" and e.item_id == m.id)
        for m in messages
    }
    assert streamed[abandoned.id] != ""  # sent before Codex retried
    assert abandoned.status == "incomplete" and abandoned.content[0].text == ""
    done = [e for e in events if e.type == "response.output_text.done" and e.item_id == abandoned.id]
    assert [e.text for e in done] == [""]
    assert answer.status == "completed" and answer.content[0].text == streamed[answer.id] == "Echo: think   a b c"
    assert final.output_text == "Echo: think   a b c"
    assert [item.type for item in whole.output].count("message") == 1
    assert whole.status == "completed" and whole.output_text == "Echo: think  d e"
