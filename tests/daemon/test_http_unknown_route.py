"""What a newcomer to the HTTP endpoint meets: unknown routes named, deadlines explained, ``--http-strict``."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from test_http_endpoint import HttpDaemon, start_http_daemon
from test_http_endpoint import http as http  # the fixture, re-exported by its name

from claif_cod import CodexClient

pytestmark = pytest.mark.codex


def test_unknown_route_names_itself_like_the_in_process_client(http: HttpDaemon) -> None:
    with pytest.raises(openai.NotFoundError) as over_http:
        http.client().embeddings.create(model="text-embedding-3-small", input="hi")
    with CodexClient(daemon="off") as local, pytest.raises(openai.NotFoundError) as in_process:
        local.embeddings.create(model="text-embedding-3-small", input="hi")
    assert over_http.value.message == in_process.value.message
    assert "POST /v1/embeddings" in over_http.value.message
    assert isinstance(over_http.value.body, dict) and over_http.value.body["code"] == "unknown_url"


def test_head_answers_each_get_route_as_its_get_does(http: HttpDaemon) -> None:
    """aiohttp routes HEAD to every GET route; the conversations' and input items' routes answered it 500."""
    client = http.client()
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": "hi"}])
    [item] = client.conversations.items.list(conversation.id).data
    response = client.responses.create(model="o4-mini", input="hi")
    for path in (
        f"/v1/conversations/{conversation.id}",
        f"/v1/conversations/{conversation.id}/items",
        f"/v1/conversations/{conversation.id}/items/{item.id}",
        f"/v1/responses/{response.id}",
        f"/v1/responses/{response.id}/input_items",
        "/v1/models",
    ):
        with urllib.request.urlopen(urllib.request.Request(http.url + path, method="GET"), timeout=30) as got:
            length = got.headers["Content-Length"]
        with urllib.request.urlopen(urllib.request.Request(http.url + path, method="HEAD"), timeout=30) as head:
            assert (head.status, head.headers["Content-Length"], head.read()) == (200, length, b""), path
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(urllib.request.Request(http.url + "/v1/conversations/conv_none", method="HEAD"))
    assert missing.value.code == 404
    assert "http.handler_failed" not in http.process.log.read_text()


def test_a_passed_deadline_is_rounded_and_names_its_source(http: HttpDaemon) -> None:
    """The SDK's read timeout (``X-Stainless-Read-Timeout``), less a tenth (at most 0.5 s) to answer
    before the client gives up, is the deadline: reported as given, not as the rest."""
    body = json.dumps({"model": "o4-mini", "messages": [{"role": "user", "content": "[[stall]] never answered"}]})
    request = urllib.request.Request(
        http.url + "/v1/chat/completions",
        data=body.encode(),
        headers={"Content-Type": "application/json", "X-Stainless-Read-Timeout": "2"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=60)
    assert info.value.code == 504
    message = json.loads(info.value.read())["error"]["message"]
    expected = "exceeded its 1.8 s deadline (from X-Stainless-Read-Timeout: 2 s, less 0.2 s to answer before the client"
    assert expected in message, message
    http.wait_idle()


@pytest.fixture
def strict_http(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[HttpDaemon]:
    process = start_http_daemon(daemon_env, tmp_path, "--http-strict")
    yield HttpDaemon(process, workdir)
    process.stop()


def test_http_strict_refuses_what_codex_cannot_honour_for_every_client(strict_http: HttpDaemon) -> None:
    """Node, litellm and ``llm`` users cannot add ``"strict": true`` to every body: the server decides."""
    client = strict_http.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}], temperature=0.2)
    assert "temperature" in info.value.message
    plain = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
    assert plain.choices[0].message.content == "Echo: hi"
    opted_out = client.chat.completions.with_raw_response.create(
        model="o4-mini", messages=[{"role": "user", "content": "hi"}], temperature=0.2, extra_body={"strict": False}
    )
    assert opted_out.headers["x-claif-cod-ignored-params"] == "temperature"


def test_http_strict_needs_http(daemon_env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claif_codd", "serve", "--http-strict", "--state-dir", str(tmp_path / "s")],
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--http-strict need --http" in done.stderr, done.stderr


def test_an_id_holding_a_slash_is_one_id_over_http_and_in_process(http: HttpDaemon) -> None:
    """openai's client encodes an id's ``/``; the routes were cut after decoding it, so such an id made
    another route (deleting conversation ``conv_…/items/msg_…`` deleted that item; a response's
    ``…/x/input_items`` listed ``…``'s items) or, over HTTP, a 500."""
    for client in (http.client(), CodexClient(daemon="off", working_dir=str(http.workdir))):
        with client:
            slashed_ids_are_not_found(client)


def slashed_ids_are_not_found(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "keep me"}])
    [item] = client.conversations.items.list(conversation.id).data
    response = client.responses.create(model="o4-mini", input="hi")
    for call in (
        lambda: client.conversations.delete(f"{conversation.id}/items/{item.id}"),
        lambda: client.conversations.retrieve(f"{conversation.id}/items"),
        lambda: client.conversations.items.retrieve("a/b", conversation_id=conversation.id),
        lambda: client.responses.retrieve(f"{response.id}/input_items"),
        lambda: client.responses.input_items.list(f"{response.id}/x"),
        lambda: client.responses.delete(f"{response.id}/cancel"),
        lambda: client.responses.cancel(f"{response.id}/x"),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert [i.id for i in client.conversations.items.list(conversation.id)] == [item.id]
    assert client.responses.retrieve(response.id).id == response.id
