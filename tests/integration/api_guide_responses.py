"""Checks for the API guide's Responses API and image examples (``docs/python-api.md``)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from api_guide import Run

from claif_cod.testing import RecordedRequest


def _thread(request: RecordedRequest) -> str:
    return str(request.body["prompt_cache_key"])


def check_responses_api(run: Run) -> None:
    lines = run.stdout.splitlines()
    assert lines[:3] == [
        "Echo: Review: def add(a, b): return a - b",
        "[turn 2] Echo: Suggest a fix",
        "[turn 3] Echo: Write a test for it",
    ]
    tokens = re.fullmatch(r"\[(\d+) tokens\]", lines[3])
    assert tokens is not None and int(tokens[1]) > 0
    assert lines[4:] == ["completed"]
    first, second, third = run.server.requests
    assert _thread(first) == _thread(second) == _thread(third)
    assert "You are a concise code reviewer." in first.developer_texts()
    assert third.user_texts() == ["Review: def add(a, b): return a - b", "Suggest a fix", "Write a test for it"]


def check_branching_from_an_earlier_response(run: Run) -> None:
    assert run.stdout == "[turn 2] Echo: Make it warmer\n[turn 2] Echo: Make it cooler\n"
    draft, warmer, cooler = run.server.requests
    assert _thread(draft) == _thread(warmer) != _thread(cooler)
    assert cooler.user_texts() == ["Name a colour", "Make it cooler"]


def check_streaming_reasoning_summaries(run: Run) -> None:
    assert run.stdout == (
        "[summary 0] Part 1 of the reasoning.\n[summary 1] Part 2 of the reasoning.\nEcho: Plan a refactor\n"
    )
    [request] = run.server.requests
    assert request.body["reasoning"] == {"effort": "low", "summary": "auto"}


def check_listing_and_deleting_responses(run: Run) -> None:
    assert run.stdout == "message user Shorter\n[turn 3] Echo: Again\n"
    first, second, third = run.server.requests
    assert _thread(first) == _thread(second) == _thread(third)


def check_conversations(run: Run) -> None:
    assert run.stdout == (
        "[turn 2] Echo: Shorter\n"
        "message user Draft a haiku\n"
        "message assistant Echo: Draft a haiku\n"
        "message user Shorter\n"
        "message assistant [turn 2] Echo: Shorter\n"
    )
    first, second = run.server.requests
    assert _thread(first) == _thread(second)  # the conversation's next response went on on the warm thread
    assert second.user_texts() == ["Draft a haiku", "Shorter"]


def check_compacting_a_conversation(run: Run) -> None:
    assert run.stdout == "['message', 'compaction']\n[turn 3] Echo: Start with the lexer\n", run.stdout
    compacting, follow_up = run.server.requests
    assert compacting.user_texts()[-1].startswith("Compact this conversation")
    assert ("assistant", "Split it into a lexer and a parser.") in compacting.messages()
    assert ("assistant", "Split it into a lexer and a parser.") not in follow_up.messages()
    assert follow_up.user_texts()[0] == "Plan a refactor of the parser"
    assert follow_up.user_texts()[1].startswith("The conversation before this point was compacted")


def check_responses_with_tools(run: Run) -> None:
    assert run.stdout == "Tool get_weather returned: 22 degrees and sunny in Oslo\n"
    first, second = run.server.requests
    assert _thread(first) == _thread(second)  # the suspended turn went on
    assert [(c.name, c.arguments) for c in first.function_calls()] == []
    assert [c.name for c in second.function_calls()] == ["get_weather"]
    assert [o.output for o in second.function_outputs()] == ["22 degrees and sunny in Oslo"]


def check_images(run: Run) -> None:
    assert run.stdout == "Echo: What is in this image?\nEcho: Describe it in one word\n"
    png = run["png"]
    for request in run.server.requests:
        assert [base64.b64decode(url.split(",", 1)[1]) for url in request.images()] == [png]


RESPONSES_CHECKS: dict[str, Callable[[Run], None]] = {
    "responses-api": check_responses_api,
    "branching-from-an-earlier-response": check_branching_from_an_earlier_response,
    "streaming-reasoning-summaries": check_streaming_reasoning_summaries,
    "listing-and-deleting-responses": check_listing_and_deleting_responses,
    "conversations": check_conversations,
    "compacting-a-conversation": check_compacting_a_conversation,
    "responses-with-tools": check_responses_with_tools,
    "images": check_images,
}
