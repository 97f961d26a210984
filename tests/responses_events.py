"""What a streamed response with reasoning summaries must look like (shared by the in-process and daemon tests)."""

from __future__ import annotations

from typing import Any

ONE_PART = ["Thinking about how to answer this request."]
TWO_PARTS = ["Part 1 of the reasoning.", "Part 2 of the reasoning."]


def check_reasoning_stream(events: list[Any], parts: list[str]) -> None:
    """Each summary part: part.added, its text deltas, text.done, part.done; all inside the reasoning item."""
    assert [e.sequence_number for e in events] == list(range(len(events)))
    types = [e.type for e in events]
    added = types.index("response.output_item.added")
    assert events[added].item.type == "reasoning" and events[added].item.summary == []
    item_id = events[added].item.id
    done = types.index("response.output_item.done")
    inside = events[added + 1 : done]
    assert all(e.item_id == item_id and e.output_index == 0 for e in inside)
    for index, text in enumerate(parts):
        mine = [e for e in inside if e.summary_index == index]
        kinds = [e.type for e in mine]
        assert kinds[0] == "response.reasoning_summary_part.added" and mine[0].part.text == ""
        assert kinds[-2:] == ["response.reasoning_summary_text.done", "response.reasoning_summary_part.done"]
        assert set(kinds[1:-2]) == {"response.reasoning_summary_text.delta"}
        assert len(kinds[1:-2]) == len(text.split())  # one delta per word, as the model streamed them
        assert "".join(e.delta for e in mine[1:-2]) == text == mine[-2].text == mine[-1].part.text
    assert [e.summary_index for e in inside] == sorted(e.summary_index for e in inside)  # parts never interleave
    assert [s.text for s in events[done].item.summary] == parts
    final = events[-1]
    assert final.type == "response.completed"
    assert [s.text for s in final.response.output[0].summary] == parts
    assert final.response.output_text.startswith("Echo: think")
