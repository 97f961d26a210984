"""Which message a response cut for length marks ``incomplete``: the one the model was cut in, not
an earlier one that a command (which the output does not show) came after."""

from __future__ import annotations

from claif_cod.engine import wire_items
from claif_cod.engine.events import ItemCompleted, ItemStarted, TextDelta, TurnEvent, TurnFinished, TurnUsage
from claif_cod.openai_compat.responses_schema import OutputMessage, Response
from claif_cod.openai_compat.responses_stream import ResponseBuilder

CUT = TurnFinished(status="failed", usage=TurnUsage(), error_message="stopped at max_output_tokens")


def statuses(events: list[TurnEvent]) -> list[tuple[str, str]]:
    builder = ResponseBuilder(
        Response(id="resp_1", created_at=0, model="m", status="in_progress", output=[]), streaming=False
    )
    for event in events:
        builder.translate(event)
    assert builder.response.status == "incomplete"
    return [(item.content[0].text, item.status) for item in builder.response.output if isinstance(item, OutputMessage)]


def said(item_id: str, text: str) -> list[TurnEvent]:
    message = wire_items.AgentMessageItem(id=item_id, text=text)
    return [ItemStarted(item=message), TextDelta(item_id=item_id, delta=text), ItemCompleted(item=message)]


def test_the_message_the_model_was_cut_in_is_incomplete() -> None:
    assert statuses([*said("m1", "Look"), *said("m2", "The answer is"), CUT]) == [
        ("Look", "completed"),
        ("The answer is", "incomplete"),
    ]


def test_a_message_a_command_came_after_stays_completed() -> None:
    command = wire_items.CommandExecutionItem(id="c1", command="ls")
    events = [*said("m1", "Let me look."), ItemStarted(item=command), ItemCompleted(item=command), CUT]
    assert statuses(events) == [("Let me look.", "completed")]
