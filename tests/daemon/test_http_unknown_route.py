"""A route the HTTP endpoint does not serve answers OpenAI's error body naming it, as the in-process client does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest
from test_http_endpoint import HttpDaemon
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


def test_a_passed_deadline_is_rounded_and_names_its_source(http: HttpDaemon) -> None:
    """The SDK's read timeout (``X-Stainless-Read-Timeout``) is the deadline: reported as given, not as the rest."""
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
    assert "exceeded its 2 s deadline (from X-Stainless-Read-Timeout)" in message, message
    http.wait_idle()
