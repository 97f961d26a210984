"""A Responses answer Codex's moderation withholds (``agentMessage.moderation``, Codex 0.171+; no
model response makes Codex moderate, so the item is built as Codex's schema describes it): its text
is left out, as chat's ``content_filter`` leaves it out, and the response ends ``incomplete`` with
OpenAI's reason ``content_filter``."""

from __future__ import annotations

import json

import msgspec
import pytest

from claif_cod.engine.events import ItemCompleted, ItemStarted, TextDelta, TurnFinished, TurnUsage
from claif_cod.engine.wire_items import AgentMessageItem, decode_item
from claif_cod.openai_compat.responses_schema import OutputMessage, Response, ResponseIncomplete
from claif_cod.openai_compat.responses_stream import ResponseBuilder

HIDE = {
    "moderated": True,
    "display": {"mode": "hide", "version": 1, "replacement": {"kind": "wellbeingPromptHelpline"}},
}


def hidden_answer() -> AgentMessageItem:
    raw = {"type": "agentMessage", "id": "m1", "text": "the hidden answer", "phase": "final_answer", "moderation": HIDE}
    item = decode_item(msgspec.Raw(json.dumps(raw).encode()))
    assert isinstance(item, AgentMessageItem) and item.withheld
    return item


@pytest.mark.parametrize("streaming", [False, True])
def test_a_withheld_answer_leaves_its_text_out_and_ends_content_filter(streaming: bool) -> None:
    builder = ResponseBuilder(
        Response(id="resp_1", created_at=0, model="m", status="in_progress", output=[]), streaming=streaming
    )
    item = hidden_answer()
    events = []
    for event in (
        ItemStarted(item=item),
        TextDelta(item_id="m1", delta="the "),
        ItemCompleted(item=item),
        TurnFinished(status="completed", usage=TurnUsage()),
    ):
        events += builder.translate(event)
    response = builder.response
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "content_filter"
    [message] = response.output
    assert isinstance(message, OutputMessage) and message.status == "incomplete"
    assert message.content[0].text == ("the " if streaming else "")  # a stream cannot take back what it sent
    assert "hidden answer" not in msgspec.json.encode(events).decode()
    assert isinstance(events[-1], ResponseIncomplete)
