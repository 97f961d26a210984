"""Usage of an answer cut by a ``stop`` sequence is what Codex counted, never 0/0/0.

claif_cod interrupts the turn once a stop sequence is complete. The model request that produced
it has usually finished by then, and Codex reports its usage just before ``turn/completed``: the
reply waits for that instead of reporting the zeros it had when the text was cut. (Through the
daemon and the HTTP endpoint: ``tests/daemon/test_usage_when_cut.py``.)
"""

from __future__ import annotations

import pytest
from test_api_guide import input_words

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

REPLY = "alpha beta END gamma delta"
PROMPT = f"[[reply:{REPLY}]]"
MODEL_WORDS = len(REPLY.split())
"""The offline model's ``output_tokens``: one per delta, one delta per word."""


def test_stop_cut_answer_reports_the_usage_codex_counted(client: CodexClient, codex_model_server: ModelServer) -> None:
    response = client.chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": PROMPT}], stop=["END"]
    )
    assert response.choices[0].message.content == "alpha beta "
    assert response.choices[0].finish_reason == "stop"
    [request] = codex_model_server.requests
    assert response.usage is not None
    assert response.usage.prompt_tokens == input_words(request) > 0
    assert response.usage.completion_tokens == MODEL_WORDS
    assert response.usage.total_tokens == response.usage.prompt_tokens + MODEL_WORDS


def test_stop_cut_stream_reports_the_usage_codex_counted(client: CodexClient, codex_model_server: ModelServer) -> None:
    stream = client.chat.completions.create(
        model="o4-mini",
        messages=[{"role": "user", "content": PROMPT}],
        stop=["END"],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "alpha beta "
    usage = chunks[-1].usage
    [request] = codex_model_server.requests
    assert usage is not None
    assert usage.prompt_tokens == input_words(request) > 0
    assert usage.completion_tokens == MODEL_WORDS
