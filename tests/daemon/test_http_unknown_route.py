"""A route the HTTP endpoint does not serve answers OpenAI's error body naming it, as the in-process client does."""

from __future__ import annotations

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
