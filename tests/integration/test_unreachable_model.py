"""A model that cannot be reached fails the request as openai's ``APIConnectionError`` once Codex has
spent its own retry budget (the provider's ``stream_max_retries``), not at the request's ``timeout``.

Codex's stable feature ``unbounded_connection_retries`` makes it retry a refused connection for ever
("Reconnecting... waiting for network"), whatever the budget says; claif_cod starts Codex without it
(engine/child_process.py, ``SPAWN_OPTIONS``). The model here is a port bound but not listening: every
connection to it is refused, and nothing else can take the port meanwhile.
"""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from chat_messages import user

from claif_cod import CodexClient
from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex

PATIENCE = 60.0
"""The requests' timeout: without the fix each of them ends here, as ``APITimeoutError``."""


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses every connection while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: a connection gets RST at once
        yield sock.getsockname()[1]


def unreachable_home(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch, stream_max_retries: int = 0) -> None:
    home = write_codex_home(tmp_path / "home", f"http://127.0.0.1:{port}/v1", stream_max_retries=stream_max_retries)
    monkeypatch.setenv("CODEX_HOME", str(home))


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_unreachable_model_is_a_connection_error(
    tmp_path: Path, workdir: Path, refused_port: int, monkeypatch: pytest.MonkeyPatch, api: str, stream: bool
) -> None:
    unreachable_home(tmp_path, refused_port, monkeypatch)
    with CodexClient(daemon="off", model="o4-mini") as client:
        # A stream fails from create(): nothing of it was made (see docs/python-api.md, "Timeouts").
        create = (
            functools.partial(client.chat.completions.create, messages=[user("hi")])
            if api == "chat"
            else functools.partial(client.responses.create, input="hi")
        )
        with pytest.raises(openai.APIConnectionError) as info:
            create(model="o4-mini", stream=stream, timeout=PATIENCE)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert "Connection failed" in info.value.message


def test_codex_spends_its_retry_budget_then_the_request_fails_and_the_client_goes_on(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        unreachable_home(tmp_path, port, monkeypatch, stream_max_retries=1)
        with caplog.at_level(logging.WARNING, logger="claif_cod.engine"), CodexClient(daemon="off") as client:
            with pytest.raises(openai.APIConnectionError):
                client.chat.completions.create(model="o4-mini", messages=[user("first")], timeout=PATIENCE)
            said = [getattr(r, "said", "") for r in caplog.records if r.getMessage() == "turn.codex_retrying"]
            assert said == ["Reconnecting... 1/1"]  # the budget, not "waiting for network"
            sock.close()
            # The model is back on the same address: the same client and its warm Codex answer.
            with ModelServer(port=port):
                reply = client.chat.completions.create(model="o4-mini", messages=[user("again")], timeout=PATIENCE)
    assert reply.choices[0].message.content == "Echo: again"
