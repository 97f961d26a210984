"""Usage of an answer cut by a ``stop`` sequence, through claif-codd's socket and its HTTP endpoint.

As ``tests/integration/test_usage_when_cut.py``: what Codex counted, not 0/0/0.
"""

from __future__ import annotations

import pytest
from daemon_process import DaemonProcess
from test_http_endpoint import HttpDaemon
from test_http_endpoint import http as http  # the fixture, re-exported by its name
from test_turn_interrupt import input_words

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

REPLY = "alpha beta END gamma delta"
PROMPT = f"[[reply:{REPLY}]]"


def check(response: object, server: ModelServer) -> None:
    usage = response.usage  # type: ignore[attr-defined]
    [request] = server.requests
    assert response.choices[0].message.content == "alpha beta "  # type: ignore[attr-defined]
    assert usage.prompt_tokens == input_words(request) > 0
    assert usage.completion_tokens == len(REPLY.split())


def test_through_the_socket(daemon: DaemonProcess, codex_model_server: ModelServer, workdir: object) -> None:
    with CodexClient(daemon="require") as client:
        response = client.chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": PROMPT}], stop=["END"]
        )
    check(response, codex_model_server)


def test_through_http(http: HttpDaemon, codex_model_server: ModelServer) -> None:
    response = http.client().chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": PROMPT}], stop=["END"]
    )
    check(response, codex_model_server)
