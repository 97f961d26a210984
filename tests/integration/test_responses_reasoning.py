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


def test_items_of_a_request_codex_retried_end_incomplete_with_what_was_streamed(
    tmp_path: Path, codex_model_server: ModelServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[[flaky]]`` drops the first attempt after two deltas; Codex retries and the answer comes as new items.
    The abandoned message cannot be taken back: it ends ``incomplete`` with the text the client already got."""
    home = write_codex_home(tmp_path / "home", codex_model_server.url, stream_max_retries=1)
    monkeypatch.setenv("CODEX_HOME", str(home))
    with (
        CodexClient(daemon="off") as client,
        client.responses.create(
            model="o4-mini", input="think [[reasoning:1]] [[flaky]] a b c", reasoning={"summary": "auto"}, stream=True
        ) as stream,
    ):
        events = list(stream)
    assert len(codex_model_server.requests) == 2
    final = events[-1].response  # type: ignore[union-attr]
    assert events[-1].type == "response.completed"
    messages = [item for item in final.output if item.type == "message"]
    abandoned, answer = messages
    streamed = {
        m.id: "".join(e.delta for e in events if e.type == "response.output_text.delta" and e.item_id == m.id)
        for m in messages
    }
    assert abandoned.status == "incomplete" and abandoned.content[0].text == streamed[abandoned.id] != ""
    done = [e for e in events if e.type == "response.output_text.done" and e.item_id == abandoned.id]
    assert [e.text for e in done] == [streamed[abandoned.id]]
    assert answer.status == "completed" and answer.content[0].text == streamed[answer.id] == "Echo: think   a b c"
    assert final.output_text.endswith("Echo: think   a b c")
