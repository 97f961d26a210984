"""``turn.interrupt`` naming a ``responses.create`` request, as a client written from docs/protocol.md uses it.

The turn stops and the request finishes normally: the response says ``status: "incomplete"`` with
``incomplete_details.reason = "interrupted"`` (streamed: a final ``response.incomplete`` event and
``StreamDone.interrupted``), holds what the turn produced, and its usage is what Codex counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from test_sessions_socket import Connect, SocketClient
from test_sessions_socket import connect as connect  # the fixture, re-exported by its name
from test_turn_interrupt import FULL, SLOW, TOOL_OPTIONS, file_appears, first_model_request, input_words, interrupt

from claif_cod.protocol import (
    CodexOptions,
    Response,
    ResponsesCreateParams,
    ResponsesCreateRequest,
    ResponsesEventNotification,
    ResponsesRetrieveParams,
    ResponsesRetrieveRequest,
    StreamDone,
    decode_result,
)
from claif_cod.testing import ModelServer

pytestmark = [pytest.mark.codex, pytest.mark.timeout(90)]


def responses(client: SocketClient, workdir: Path, stream: bool = False, **body: Any) -> ResponsesCreateRequest:
    options = {k: body.pop(k) for k in list(body) if k in TOOL_OPTIONS}
    payload = {"model": "o4-mini", "stream": stream, **body}
    return ResponsesCreateRequest(
        id=client.next_id(),
        params=ResponsesCreateParams(
            body=msgspec.Raw(json.dumps(payload).encode()), options=CodexOptions(working_dir=str(workdir), **options)
        ),
    )


def events_of(client: SocketClient, request_id: int) -> list[dict[str, Any]]:
    return [
        json.loads(bytes(m.params.event))
        for m in client.messages
        if isinstance(m, ResponsesEventNotification) and m.params.request_id == request_id
    ]


async def result_of(client: SocketClient, request_id: int, mark: int) -> dict[str, Any]:
    reply = await client.reply(request_id, after=mark)
    assert isinstance(reply, Response), reply
    return json.loads(bytes(reply.result))  # type: ignore[no-any-return]


async def test_response_interrupted_by_its_request_is_incomplete(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    client = await connect()
    request = responses(client, workdir, input=SLOW)
    mark = client.send(request)
    await first_model_request(codex_model_server)
    assert await interrupt(client, request.id) is True
    response = await result_of(client, request.id, mark)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "interrupted"}
    # The model pauses before each word, so the turn holds at most the message's start and a few
    # words; on a loaded machine the interrupt can even reach Codex before the message began (a
    # non-streamed request shows nothing to wait for), and then the response holds no output.
    for message in response["output"]:
        assert message["status"] == "incomplete"
        text = message["content"][0]["text"] if message["content"] else ""
        assert FULL.startswith(text) and len(text) < len(FULL), text
    assert len(response["output"]) <= 1

    fetched = await client.request(
        ResponsesRetrieveRequest(id=client.next_id(), params=ResponsesRetrieveParams(response_id=response["id"]))
    )
    assert isinstance(fetched, Response) and json.loads(bytes(fetched.result))["status"] == "incomplete"
    after = await client.request(responses(client, workdir, input="after", previous_response_id=response["id"]))
    assert isinstance(after, Response) and json.loads(bytes(after.result))["status"] == "completed"
    assert await interrupt(client, request.id) is False  # that request is over


async def test_streamed_response_interrupted_ends_with_response_incomplete(connect: Connect, workdir: Path) -> None:
    client = await connect()
    request = responses(client, workdir, stream=True, input=SLOW)
    mark = client.send(request)
    await client.wait_for(
        lambda m: (
            isinstance(m, ResponsesEventNotification)
            and m.params.request_id == request.id
            and b"output_text.delta" in bytes(m.params.event)
        ),
        after=mark,
    )
    assert await interrupt(client, request.id) is True
    reply = await client.reply(request.id, after=mark)
    assert isinstance(reply, Response), reply
    events = events_of(client, request.id)
    assert decode_result(reply.result, StreamDone) == StreamDone(chunks=len(events), interrupted=True)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "interrupted"}
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert FULL.startswith(text) and 0 < len(text) < len(FULL), text
    assert (await client.status()).turns_in_flight == 0


async def test_interrupted_response_reports_the_usage_codex_counted(
    connect: Connect, workdir: Path, codex_model_server: ModelServer
) -> None:
    """Interrupted while its command runs: the model request that asked for the command was counted."""
    client = await connect()
    request = responses(client, workdir, input="[[tool:touch started && sleep 30]] go", **TOOL_OPTIONS)
    mark = client.send(request)
    await file_appears(workdir / "started")
    assert await interrupt(client, request.id) is True
    response = await result_of(client, request.id, mark)
    assert response["status"] == "incomplete"
    [asked] = codex_model_server.requests
    usage = response["usage"]
    assert usage["input_tokens"] == input_words(asked) > 0
    assert usage["output_tokens"] == 1  # the one function call of that request
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
