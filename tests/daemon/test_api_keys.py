"""Through the daemon, each request reaches the model with its own caller's API key, also where it
continues a thread that a request with another key started (a named session, a stored response)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chat_messages import user
from daemon_process import DaemonProcess

from claif_cod import CodexClient
from claif_cod.testing import ModelServer, write_codex_home

pytestmark = pytest.mark.codex


@pytest.fixture
def keyed_home(tmp_path: Path, codex_model_server: ModelServer) -> str:
    """A Codex home whose provider sends the key Codex is given (``CODEX_API_KEY``) as its bearer token."""
    return str(write_codex_home(tmp_path / "keyed-home", codex_model_server.url, env_key="CODEX_API_KEY"))


def client(key: str, home: str, **options: str) -> CodexClient:
    return CodexClient(daemon="require", api_key=key, codex_home=home, model="o4-mini", **options)  # type: ignore[arg-type]


def bearer(server: ModelServer) -> str | None:
    return server.requests[-1].headers.get("authorization")


def test_a_named_session_continued_with_another_key_runs_with_that_key(
    daemon: DaemonProcess, keyed_home: str, workdir: Path, codex_model_server: ModelServer
) -> None:
    with (
        client("sk-one", keyed_home, session_id="shared") as one,
        client("sk-two", keyed_home, session_id="shared") as two,
    ):
        one.chat.completions.create(messages=[user("first")])
        assert bearer(codex_model_server) == "Bearer sk-one"
        reply = two.chat.completions.create(messages=[user("second")])
        assert bearer(codex_model_server) == "Bearer sk-two"
        assert reply.choices[0].message.content == "[turn 2] Echo: second"  # the same session, its history kept
        reply = one.chat.completions.create(messages=[user("third")])
        assert bearer(codex_model_server) == "Bearer sk-one"
        assert reply.choices[0].message.content == "[turn 3] Echo: third"


def test_a_stored_response_continued_with_another_key_runs_with_that_key(
    daemon: DaemonProcess, keyed_home: str, workdir: Path, codex_model_server: ModelServer
) -> None:
    with client("sk-one", keyed_home) as one, client("sk-two", keyed_home) as two:
        first = one.responses.create(input="first")
        second = two.responses.create(input="second", previous_response_id=first.id)
        assert bearer(codex_model_server) == "Bearer sk-two"
        assert second.output_text == "[turn 2] Echo: second"


def test_a_response_with_tools_continued_with_another_key_is_replayed_with_that_key(
    daemon: DaemonProcess, keyed_home: str, workdir: Path, codex_model_server: ModelServer
) -> None:
    """A thread with caller tools cannot be resumed in another process: the chain is replayed on a
    new thread, in a process of the new key."""
    tools: Any = [{"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}]
    with client("sk-one", keyed_home) as one, client("sk-two", keyed_home) as two:
        asked = one.responses.create(input="[[call:get_time {}]]", tools=tools)
        [call] = [item for item in asked.output if item.type == "function_call"]
        output = {"type": "function_call_output", "call_id": call.call_id, "output": "noon"}
        answered = one.responses.create(previous_response_id=asked.id, input=[output], tools=tools)
        assert answered.output_text == "Tool get_time returned: noon"
        going_on = two.responses.create(previous_response_id=answered.id, input="thanks", tools=tools)
    assert bearer(codex_model_server) == "Bearer sk-two"
    assert going_on.output_text == "[turn 2] Echo: thanks"
    assert codex_model_server.requests[-1].function_outputs()[0].output == "noon"  # the chain, replayed


def test_a_busy_sessions_turn_with_another_key_waits_for_it_then_runs_with_its_own(
    daemon: DaemonProcess, keyed_home: str, workdir: Path, codex_model_server: ModelServer
) -> None:
    with client("sk-one", keyed_home, session_id="busy") as one, client("sk-two", keyed_home, session_id="busy") as two:
        stream = one.chat.completions.create(messages=[user("[[slow:200]] a b c d")], stream=True)
        first = next(chunk for chunk in stream if chunk.choices and chunk.choices[0].delta.content)  # it runs
        reply = two.chat.completions.create(messages=[user("next")])
        rest = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert (first.choices[0].delta.content or "") + rest == "Echo: a b c d"
    assert reply.choices[0].message.content == "[turn 2] Echo: next"
    assert [r.headers.get("authorization") for r in codex_model_server.requests] == ["Bearer sk-one", "Bearer sk-two"]
