"""Caller function tools through ``client.responses``: ``function_call`` output items, then
``function_call_output`` input items resume the same suspended Codex turn (real binary, offline model)."""

from __future__ import annotations

import json
import re
from typing import Any

import openai
import pytest
from image_details import PNG_URL
from test_tools import engine_of

from claif_cod import AsyncCodexClient, CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME: dict[str, Any] = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


def thread_of(request: object) -> str:
    return str(request.body["prompt_cache_key"])  # type: ignore[attr-defined]


def outputs(calls: list[Any], text: str = "sunny") -> list[dict[str, Any]]:
    return [{"type": "function_call_output", "call_id": c.call_id, "output": f"{text} {c.name}"} for c in calls]


def test_function_call_then_output_with_previous_response_id(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.responses.create(input='Weather? [[call:get_weather {"city": "Paris"}]]', tools=[WEATHER])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert first.status == "completed" and first.usage is not None and first.usage.output_tokens > 0
    assert "get_weather" in codex_model_server.requests[0].tool_names()

    second = client.responses.create(previous_response_id=first.id, input=outputs([call]), tools=[WEATHER])

    assert second.output_text == "Tool get_weather returned: sunny get_weather"
    one, two = codex_model_server.requests
    assert thread_of(one) == thread_of(two)  # the same suspended turn went on
    assert [(o.call_id, o.output) for o in two.function_outputs()] == [(call.call_id, "sunny get_weather")]


def test_outputs_sent_with_another_reasoning_effort_replay_the_chain_on_a_new_thread(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """As for chat (test_tools.py): a turn cannot change its effort midway, so the stored chain goes to
    a new thread at the effort asked for, and the suspended turn is given up."""
    first = client.responses.create(input='Weather? [[call:get_weather {"city": "Paris"}]]', tools=[WEATHER])
    [call] = [item for item in first.output if item.type == "function_call"]
    second = client.responses.create(
        previous_response_id=first.id, input=outputs([call]), tools=[WEATHER], reasoning={"effort": "high"}
    )
    assert second.output_text == "Tool get_weather returned: sunny get_weather"
    one, two = codex_model_server.requests
    assert thread_of(one) != thread_of(two)
    assert two.body["reasoning"]["effort"] == "high"
    assert [(o.call_id, o.output) for o in two.function_outputs()] == [(call.call_id, "sunny get_weather")]


def test_a_chain_rebuilt_after_its_tool_outputs_keeps_its_instructions(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """The response that answered the outputs went on in the turn of the one that made the calls, and
    recorded no instructions of its own: a chain rebuilt from it (a branch, a continuation with other
    tools) ran without the instructions its thread had."""
    first = client.responses.create(
        input='[[call:get_weather {"city": "Oslo"}]]', tools=[WEATHER], instructions="Answer in French."
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    answered = client.responses.create(previous_response_id=first.id, input=outputs([call]), tools=[WEATHER])
    client.responses.create(previous_response_id=answered.id, input="first branch", tools=[WEATHER])
    client.responses.create(previous_response_id=answered.id, input="second branch", tools=[WEATHER])
    client.responses.create(previous_response_id=answered.id, input="without tools")
    *_, continued, branch, without = codex_model_server.requests
    assert thread_of(branch) != thread_of(continued) != thread_of(without)  # both rebuilt on new threads
    for request in (continued, branch, without):
        assert "Answer in French." in request.developer_texts()


def test_outputs_sent_with_other_instructions_replay_the_chain_on_a_new_thread(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """A suspended turn cannot take new developer instructions: they were dropped, the turn going on
    with the old ones."""
    first = client.responses.create(input="[[call:get_time {}]]", tools=[TIME], instructions="Be brief.")
    [call] = [item for item in first.output if item.type == "function_call"]
    second = client.responses.create(
        previous_response_id=first.id, input=outputs([call]), tools=[TIME], instructions="Be verbose."
    )
    assert second.output_text == "Tool get_time returned: sunny get_time"
    one, two = codex_model_server.requests
    assert thread_of(one) != thread_of(two)
    assert "Be verbose." in two.developer_texts() and "Be brief." not in two.developer_texts()
    same = client.responses.create(input="[[call:get_time {}]]", tools=[TIME], instructions="Be brief.")
    [call] = [item for item in same.output if item.type == "function_call"]
    client.responses.create(previous_response_id=same.id, input=outputs([call]), tools=[TIME], instructions="Be brief.")
    assert thread_of(codex_model_server.requests[-1]) == thread_of(codex_model_server.requests[-2])


def test_parallel_calls_come_back_together_and_a_replayed_transcript_resumes(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    prompt = 'Weather and time? [[call:get_weather {"city": "Oslo"}]] [[call:get_time {}]]'
    first = client.responses.create(input=prompt, tools=[WEATHER, TIME])
    calls = [item for item in first.output if item.type == "function_call"]
    assert sorted(c.name for c in calls) == ["get_time", "get_weather"]
    # As the Agents SDK does by default: the whole transcript again, no previous_response_id.
    transcript: list[Any] = [{"role": "user", "content": prompt}]
    transcript += [c.model_dump(exclude_none=True) for c in calls]
    transcript += outputs(calls, "ok")
    second = client.responses.create(input=transcript, tools=[WEATHER, TIME])

    assert sorted(second.output_text.splitlines()) == ["Tool get_time returned: ok get_time",
                                                       "Tool get_weather returned: ok get_weather"]  # fmt: skip
    assert len(codex_model_server.requests) == 2  # resumed: the model was not asked again from scratch
    assert thread_of(codex_model_server.requests[0]) == thread_of(codex_model_server.requests[1])


def test_streamed_function_call_events(client: CodexClient) -> None:
    with client.responses.create(input="[[call:get_time {}]]", tools=[TIME], stream=True) as stream:
        events = list(stream)
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types and "response.function_call_arguments.done" in types
    done = [e for e in events if e.type == "response.output_item.done"][-1]
    assert done.item.type == "function_call" and done.item.name == "get_time"  # type: ignore[union-attr]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_cold_transcript_replay_injects_calls_and_results(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    transcript: list[Any] = [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "call_old", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "call_old", "output": "hot"},
    ]
    response = await aclient.responses.create(input=transcript, tools=[WEATHER])
    assert response.output_text == "Tool get_weather returned: hot"
    [request] = codex_model_server.requests
    assert [(c.call_id, c.name) for c in request.function_calls()] == [("call_old", "get_weather")]
    assert [(o.call_id, o.output) for o in request.function_outputs()] == [("call_old", "hot")]


def test_a_user_message_while_calls_wait_is_a_400(client: CodexClient, codex_model_server: ModelServer) -> None:
    first = client.responses.create(input="[[call:get_time {}]]", tools=[TIME])
    [call] = [item for item in first.output if item.type == "function_call"]
    with pytest.raises(
        openai.BadRequestError, match=re.escape(f"No tool output found for function call {call.call_id}.")
    ):
        client.responses.create(previous_response_id=first.id, input="never mind", tools=[TIME])
    after = client.responses.create(previous_response_id=first.id, input=outputs([call]), tools=[TIME])
    assert after.output_text == "Tool get_time returned: sunny get_time"  # the turn still waited
    assert len(codex_model_server.requests) == 2


def test_outputs_answer_the_calls_of_the_response_they_continue_each_and_no_other(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """Continuing ``a`` with the outputs of ``b``'s calls went on with ``b``'s turn (another
    conversation) under ``a``'s name; some of ``a``'s calls answered was refused in claif_cod's words.
    Each is OpenAI's 400 now, and both turns still wait for their own outputs."""
    a = client.responses.create(input="[[call:get_time {}]] [[call:get_time {}]]", tools=[TIME])
    b = client.responses.create(input="[[call:get_time {}]]", tools=[TIME])
    a_calls = [item for item in a.output if item.type == "function_call"]
    [b_call] = [item for item in b.output if item.type == "function_call"]
    with pytest.raises(
        openai.BadRequestError,
        match=re.escape(f"No tool call found for function call output with call_id {b_call.call_id}."),
    ):
        client.responses.create(previous_response_id=a.id, input=outputs([b_call]), tools=[TIME])
    with pytest.raises(
        openai.BadRequestError, match=re.escape(f"No tool output found for function call {a_calls[1].call_id}.")
    ):
        client.responses.create(previous_response_id=a.id, input=outputs(a_calls[:1]), tools=[TIME])
    with pytest.raises(openai.BadRequestError, match="Previous response with id 'resp_nope' not found") as unknown:
        client.responses.create(previous_response_id="resp_nope", input=outputs([b_call]), tools=[TIME])
    assert (unknown.value.param, unknown.value.code) == ("previous_response_id", "previous_response_not_found")
    assert len(codex_model_server.requests) == 2  # none reached the model

    a_done = client.responses.create(previous_response_id=a.id, input=outputs(a_calls, "a"), tools=[TIME])
    b_done = client.responses.create(previous_response_id=b.id, input=outputs([b_call], "b"), tools=[TIME])
    assert a_done.output_text == "Tool get_time returned: a get_time\nTool get_time returned: a get_time"
    assert b_done.output_text == "Tool get_time returned: b get_time"
    requests = codex_model_server.requests
    assert [thread_of(r) for r in requests[2:]] == [thread_of(requests[0]), thread_of(requests[1])]


def test_outputs_with_a_message_after_them_continue_a_waiting_response_on_a_thread_of_its_own(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """No turn can start on the thread whose turn waits for these outputs (one did, and hung): the
    chain, the outputs and the message go to a new thread, as OpenAI answers them in one response."""
    first = client.responses.create(input="[[call:get_time {}]]", tools=[TIME])
    [call] = [item for item in first.output if item.type == "function_call"]
    then = client.responses.create(
        previous_response_id=first.id, input=[*outputs([call]), {"role": "user", "content": "and then?"}], tools=[TIME]
    )
    assert then.output_text == "[turn 2] Echo: and then?"
    request = codex_model_server.requests[-1]
    assert [(o.call_id, o.output) for o in request.function_outputs()] == [(call.call_id, "sunny get_time")]
    assert thread_of(request) != thread_of(codex_model_server.requests[0])
    assert len(engine_of(client).suspensions) == 0  # its calls answered: given up now, not at its tool timeout


def test_a_branch_from_a_response_before_one_that_waits_for_outputs_takes_a_thread_of_its_own(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """It was refused, saying the response branched from waited for outputs (a later one did)."""
    first = client.responses.create(input="one", tools=[TIME])
    waiting = client.responses.create(previous_response_id=first.id, input="two [[call:get_time {}]]", tools=[TIME])
    branch = client.responses.create(previous_response_id=first.id, input="three", tools=[TIME])
    assert branch.output_text == "[turn 2] Echo: three"
    assert codex_model_server.requests[-1].user_texts()[-2:] == ["one", "three"]
    [call] = [item for item in waiting.output if item.type == "function_call"]
    after = client.responses.create(previous_response_id=waiting.id, input=outputs([call]), tools=[TIME])
    assert after.output_text == "Tool get_time returned: sunny get_time"
    assert thread_of(codex_model_server.requests[-1]) == thread_of(codex_model_server.requests[1])


def test_continuing_a_response_that_made_calls_needs_their_outputs(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    """Its turn already went on with the outputs (so the chain is replayed on a new thread): another
    branch from it without outputs is refused as OpenAI refuses it, as is an output of no call."""
    first = client.responses.create(input="[[call:get_time {}]]", tools=[TIME])
    [call] = [item for item in first.output if item.type == "function_call"]
    client.responses.create(previous_response_id=first.id, input=outputs([call]), tools=[TIME])
    with pytest.raises(
        openai.BadRequestError, match=re.escape(f"No tool output found for function call {call.call_id}.")
    ):
        client.responses.create(previous_response_id=first.id, input="never mind", tools=[TIME])
    with pytest.raises(
        openai.BadRequestError, match=re.escape("No tool call found for function call output with call_id nope.")
    ):
        client.responses.create(input=[{"type": "function_call_output", "call_id": "nope", "output": "x"}])
    assert len(codex_model_server.requests) == 2  # neither reached the model


@pytest.mark.parametrize("store", [True, False])
def test_an_agent_loop_with_tools_stays_on_one_thread(
    client: CodexClient, codex_model_server: ModelServer, store: bool
) -> None:
    # The Agents SDK's loop without previous_response_id: the whole transcript each request, tool
    # results answering the calls, then the next user message after the final answer.
    transcript: list[Any] = [{"role": "user", "content": 'Weather? [[call:get_weather {"city": "Rome"}]]'}]
    first = client.responses.create(input=transcript, tools=[WEATHER], store=store)
    calls = [item for item in first.output if item.type == "function_call"]
    transcript += [item.model_dump(exclude_none=True) for item in first.output]
    transcript += outputs(calls)
    answer = client.responses.create(input=transcript, tools=[WEATHER], store=store)
    assert answer.output_text == "Tool get_weather returned: sunny get_weather"
    transcript += [item.model_dump(exclude_none=True) for item in answer.output]
    transcript.append({"role": "user", "content": "thanks"})
    after = client.responses.create(input=transcript, tools=[WEATHER], store=store)

    assert after.output_text == "[turn 2] Echo: thanks"
    assert len({thread_of(r) for r in codex_model_server.requests}) == 1  # nothing seeded again
    assert codex_model_server.requests[-1].user_texts()[-1] == "thanks"


def test_images_a_tool_returns_reach_the_model_in_its_output(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    first = client.responses.create(input="Chart? [[call:get_time {}]]", tools=[TIME])
    [call] = [item for item in first.output if item.type == "function_call"]
    output = [{"type": "input_text", "text": "the chart"}, {"type": "input_image", "image_url": PNG_URL}]
    second = client.responses.create(
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": output}],
        tools=[TIME],
    )
    assert second.output_text == "Tool get_time returned: the chart"
    one, two = codex_model_server.requests
    assert thread_of(one) == thread_of(two)  # the suspended turn went on, the image in its output
    assert two.images() == [PNG_URL]
    [listed] = client.responses.input_items.list(second.id).data
    assert listed.type == "function_call_output" and listed.output[1].detail == "auto"  # type: ignore[union-attr,index]


async def test_a_replayed_transcript_injects_the_images_a_tool_returned(
    aclient: AsyncCodexClient, codex_model_server: ModelServer
) -> None:
    transcript: list[Any] = [
        {"role": "user", "content": "Chart?"},
        {"type": "function_call", "call_id": "call_old", "name": "get_time", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "call_old",
            "output": [{"type": "input_image", "image_url": PNG_URL}],
        },
    ]
    response = await aclient.responses.create(input=transcript, tools=[TIME])
    assert response.output_text == "Tool get_time returned: "  # an output of images only: no text
    [request] = codex_model_server.requests
    assert request.images() == [PNG_URL]
