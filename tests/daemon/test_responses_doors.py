"""The Responses API's later additions through both daemon doors: the socket (``CodexClient(daemon="require")``
and raw protocol messages) and ``serve --http`` (the real ``openai`` SDK), with the real Codex binary."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from daemon_process import DaemonProcess
from image_details import PNG_URL, chat_messages, image_details, responses_input
from responses_events import TWO_PARTS, check_reasoning_stream
from test_responses_stored import check_include_values
from test_sessions_socket import SocketClient
from test_turn_interrupt import FULL, SLOW

from claif_cod import CodexClient
from claif_cod.protocol import InterruptedResult, TurnInterruptParams, TurnInterruptRequest
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


class Doors:
    def __init__(self, process: DaemonProcess, workdir: Path) -> None:
        self.process = process
        self.workdir = workdir
        url = process.status().http
        assert url is not None
        self.http = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

    def socket(self) -> CodexClient:
        return CodexClient(daemon="require", model="o4-mini", working_dir=str(self.workdir))


@pytest.fixture
def doors(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[Doors]:
    process = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]), state_dir=tmp_path / "state", log=tmp_path / "codd.log",
        env=daemon_env,
    )  # fmt: skip
    process.start("--http", "127.0.0.1:0", "--http-working-dir", str(workdir))
    yield Doors(process, workdir)
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


def test_reasoning_summaries_stream_through_both_doors(doors: Doors) -> None:
    body = {"model": "o4-mini", "input": "think [[reasoning:2]]", "reasoning": {"summary": "auto"}}
    with doors.socket() as client, client.responses.create(**body, stream=True) as stream:  # type: ignore[call-overload]
        check_reasoning_stream(list(stream), TWO_PARTS)
    with doors.http.responses.create(**body, stream=True) as stream:  # type: ignore[call-overload]
        check_reasoning_stream(list(stream), TWO_PARTS)


def test_http_stream_cut_short_by_a_stopping_daemon_ends_with_response_failed(
    daemon_env: dict[str, str], tmp_path: Path, workdir: Path
) -> None:
    process = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]), state_dir=tmp_path / "state", log=tmp_path / "codd.log",
        env=daemon_env,
    )  # fmt: skip
    process.start("--http", "127.0.0.1:0", "--http-working-dir", str(workdir), "--drain-timeout", "0.5")
    doors = Doors(process, workdir)
    stream = doors.http.responses.create(model="o4-mini", input="[[stall-mid]] a b", stream=True)
    events = iter(stream)
    first = next(events)
    assert process.proc is not None
    process.proc.send_signal(signal.SIGTERM)
    rest = list(events)  # no exception: the stream ends with an event, as OpenAI's does
    assert process.proc.wait(timeout=30) == 0

    everything = [first, *rest]
    assert [e.sequence_number for e in everything] == list(range(len(everything)))
    last = everything[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None and "shutting down" in last.response.error.message
    assert last.response.error.code == "server_error"
    [message] = last.response.output
    assert message.type == "message" and message.status == "incomplete"
    assert message.content[0].text == "".join(e.delta for e in rest if e.type == "response.output_text.delta")
    assert rest[-2].type == "response.output_item.done"  # the message was closed before the response failed

    process.start()
    with doors.socket() as client:
        stored = client.responses.retrieve(last.response.id)
    assert stored.status == "failed" and stored.error is not None and "shutting down" in stored.error.message
    process.stop()


def test_a_stored_response_is_not_streamed_again_through_either_door(doors: Doors) -> None:
    with doors.socket() as client:
        created = client.responses.create(input="keep me")
        with pytest.raises(openai.BadRequestError, match="not streamed again"):
            client.responses.retrieve(created.id, stream=True)
    with pytest.raises(openai.BadRequestError, match="not streamed again"):
        doors.http.responses.retrieve(created.id, stream=True)
    assert doors.http.responses.retrieve(created.id, include=["reasoning.encrypted_content"]).id == created.id


def test_include_values_are_checked_on_stored_reads_through_both_doors(doors: Doors) -> None:
    with doors.socket() as client:
        check_include_values(client)
    check_include_values(doors.http)


def test_image_detail_through_both_doors(doors: Doors, codex_model_server: ModelServer) -> None:
    with doors.socket() as client:
        via_socket = client.responses.create(input=responses_input("auto", "auto"))
        low = client.chat.completions.with_raw_response.create(
            model="o4-mini",
            messages=chat_messages(None, "low"),  # type: ignore[arg-type]
        )
    via_http = doors.http.responses.create(model="o4-mini", input=responses_input("auto", "auto"))  # type: ignore[arg-type]
    low_http = doors.http.chat.completions.with_raw_response.create(
        model="o4-mini",
        messages=chat_messages(None, "low"),  # type: ignore[arg-type]
    )
    assert via_socket.output_text == via_http.output_text == "[turn 2] Echo: see"
    assert (
        low.headers["x-claif-cod-ignored-params"]
        == low_http.headers["x-claif-cod-ignored-params"]
        == ("image_url.detail")
    )
    socket_r, socket_low, http_r, http_low = codex_model_server.requests
    assert image_details(socket_r) == image_details(http_r) == ["auto", "auto"]
    assert image_details(socket_low) == image_details(http_low) == [None, "high"]


def test_input_items_delete_and_cancel_through_both_doors_and_a_restart(
    doors: Doors, codex_model_server: ModelServer
) -> None:
    transcript = [
        {"role": "user", "content": "first words"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "second words"},
    ]
    with doors.socket() as client:
        kept = client.responses.create(input=transcript)  # type: ignore[arg-type]
        doomed = client.responses.create(input="doomed words", previous_response_id=kept.id)
        via_socket = client.responses.input_items.list(kept.id, order="asc")
        with pytest.raises(openai.BadRequestError, match="Cannot cancel a synchronous response"):
            client.responses.cancel(kept.id)
    via_http = doors.http.responses.input_items.list(kept.id, order="asc")
    assert via_socket.model_dump() == via_http.model_dump()
    assert [i.content[0].text for i in via_http.data] == ["first words", "noted", "second words"]  # type: ignore[union-attr]
    assert [i.id for i in doors.http.responses.input_items.list(kept.id, limit=1, order="asc")] == [
        i.id for i in via_http.data
    ]  # paged one by one over HTTP (after=...)
    last = via_http.data[-1].id
    with doors.socket() as client:  # ``before`` crosses the socket protocol too
        backwards = client.responses.input_items.list(kept.id, order="asc", limit=1, extra_query={"before": last})
    assert [i.content[0].text for i in backwards.data] == ["noted"]  # type: ignore[union-attr]
    backwards = doors.http.responses.input_items.list(kept.id, order="asc", extra_query={"before": last})
    assert [i.content[0].text for i in backwards.data] == ["first words", "noted"]  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError, match="Cannot cancel a synchronous response"):
        doors.http.responses.cancel(kept.id)
    with pytest.raises(openai.BadRequestError, match="background"):
        doors.http.responses.create(model="o4-mini", input="x", background=True)

    doors.http.responses.delete(doomed.id)
    with doors.socket() as client, pytest.raises(openai.NotFoundError):
        client.responses.retrieve(doomed.id)

    assert doors.process.stop() == 0
    doors.process.start()
    with doors.socket() as client:
        assert client.responses.input_items.list(kept.id, order="asc").model_dump() == via_http.model_dump()
        for call in (client.responses.retrieve, client.responses.input_items.list, client.responses.delete):
            with pytest.raises(openai.NotFoundError):
                call(doomed.id)
        branch = client.responses.create(input="branch", previous_response_id=kept.id)
    assert branch.output_text == "[turn 3] Echo: branch"
    assert ("user", "doomed words") not in codex_model_server.requests[-1].messages()  # forked past the deleted one


GET_TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


def test_tool_calls_are_answered_after_a_daemon_restart(doors: Doors, codex_model_server: ModelServer) -> None:
    """The suspended turn died with the daemon: the stored conversation is replayed on a new thread, the
    calls and the results as real items, and the answer goes on (socket and HTTP, restarts in between)."""
    with doors.socket() as client:
        zero = client.responses.create(
            input="remember 7",
            tools=[GET_TIME],  # type: ignore[list-item]
            instructions="RULE-9",
        )
        first = client.responses.create(
            input="what time? [[call:get_time {}]]",
            previous_response_id=zero.id,
            tools=[GET_TIME],  # type: ignore[list-item]
        )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert doors.process.stop() == 0
    doors.process.start("--http", "127.0.0.1:0", "--http-working-dir", str(doors.workdir))
    doors = Doors(doors.process, doors.workdir)
    answered = doors.http.responses.create(
        model="o4-mini",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "noon"}],
        tools=[GET_TIME],  # type: ignore[list-item]
    )
    assert answered.output_text == "Tool get_time returned: noon"
    with doors.socket() as client:
        after = client.responses.create(
            input="and later?",
            previous_response_id=answered.id,
            tools=[GET_TIME],  # type: ignore[list-item]  # the same tools: the thread goes on as it is
        )
    assert after.output_text == "[turn 3] Echo: and later?"

    _, asked, replay, later = codex_model_server.requests
    assert replay.body["prompt_cache_key"] != asked.body["prompt_cache_key"]  # a new thread
    assert later.body["prompt_cache_key"] == replay.body["prompt_cache_key"]  # which then goes on directly
    assert [(c.call_id, c.name, c.arguments) for c in replay.function_calls()] == [(call.call_id, "get_time", "{}")]
    assert [(o.call_id, o.output) for o in replay.function_outputs()] == [(call.call_id, "noon")]
    assert replay.messages()[:3] == [
        ("user", "remember 7"),
        ("assistant", "Echo: remember 7"),
        ("user", "what time? [[call:get_time {}]]"),
    ]  # the whole chain, in order
    assert any("RULE-9" in text for text in replay.developer_texts())
    assert [t["name"] for t in replay.body["tools"] if t.get("name") == "get_time"] == ["get_time"]


def test_images_a_tool_returns_reach_the_model_through_both_doors(
    doors: Doors, codex_model_server: ModelServer
) -> None:
    """A chat ``tool`` message through the socket, a Responses ``function_call_output`` through HTTP:
    each answers its suspended turn with the image, which the model gets in the tool's output."""
    chat_time = {"type": "function", "function": GET_TIME}
    asked: list[dict[str, Any]] = [{"role": "user", "content": "chart? [[call:get_time {}]]"}]
    with doors.socket() as client:
        calling = client.chat.completions.create(model="o4-mini", messages=asked, tools=[chat_time])  # type: ignore[arg-type,list-item]
        [call] = calling.choices[0].message.tool_calls or []
        content = [{"type": "text", "text": "the chart"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]
        messages = [*asked, calling.choices[0].message.model_dump(exclude_none=True)]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        via_socket = client.chat.completions.create(model="o4-mini", messages=messages, tools=[chat_time])  # type: ignore[arg-type,list-item]
    first = doors.http.responses.create(model="o4-mini", input="chart? [[call:get_time {}]]", tools=[GET_TIME])  # type: ignore[list-item]
    [fc] = [item for item in first.output if item.type == "function_call"]
    output = [{"type": "input_text", "text": "the chart"}, {"type": "input_image", "image_url": PNG_URL}]
    via_http = doors.http.responses.create(
        model="o4-mini",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": fc.call_id, "output": output}],  # type: ignore[list-item]
        tools=[GET_TIME],  # type: ignore[list-item]
    )
    assert via_socket.choices[0].message.content == via_http.output_text == "Tool get_time returned: the chart"
    socket_call, socket_result, http_call, http_result = codex_model_server.requests
    assert socket_result.body["prompt_cache_key"] == socket_call.body["prompt_cache_key"]  # the suspended turn
    assert http_result.body["prompt_cache_key"] == http_call.body["prompt_cache_key"]
    assert socket_result.images() == http_result.images() == [PNG_URL]


async def test_http_chat_stream_cut_by_turn_interrupt_says_so(doors: Doors) -> None:
    """A chat served over HTTP in a named session, interrupted by a socket client naming that session: the
    chunk with its finish_reason carries ``interrupted: true`` (what ``StreamDone.interrupted`` says on the socket)."""
    http = openai.AsyncOpenAI(base_url=str(doors.http.base_url), api_key="unused", max_retries=0)
    editor = await SocketClient.connect(doors.process.socket)
    try:
        stream = await http.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "user", "content": SLOW}],
            stream=True,
            extra_body={"session_id": "cut-over-http"},
        )
        chunks = []
        async for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == 1:
                request = TurnInterruptRequest(
                    id=editor.next_id(), params=TurnInterruptParams(session_id="cut-over-http")
                )
                assert (await editor.call(request, InterruptedResult)).interrupted is True
    finally:
        await editor.close()
        await http.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert FULL.startswith(text) and len(text) < len(FULL), text
    [finish] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish.choices[0].finish_reason == "stop"
    assert (finish.model_extra or {}).get("interrupted") is True
    assert all("interrupted" not in (c.model_extra or {}) for c in chunks if c is not finish)

    again = doors.http.chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": "again"}], stream=True,
        extra_body={"session_id": "cut-over-http"},
    )  # fmt: skip
    assert all("interrupted" not in (c.model_extra or {}) for c in again)
