"""An anonymous conversation's thread is ephemeral, so a daemon restart loses it: the history re-seeds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from chat_messages import user
from daemon_process import DaemonProcess

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def test_an_anonymous_conversation_survives_a_daemon_restart_by_reinjection(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="require", model="o4-mini") as client:
        first = client.chat.completions.create(messages=[user("before")]).choices[0].message.content or ""
        assert first == "Echo: before"
    daemon.kill9()
    daemon.start()
    with CodexClient(daemon="require", model="o4-mini") as client:
        after = client.chat.completions.create(
            messages=[user("before"), {"role": "assistant", "content": first}, user("after")]
        )
    assert after.choices[0].message.content == "[turn 2] Echo: after"
    before_request, after_request = codex_model_server.requests
    assert after_request.body["prompt_cache_key"] != before_request.body["prompt_cache_key"]  # a new thread...
    assert after_request.messages()[-3:] == [("user", "before"), ("assistant", "Echo: before"), ("user", "after")]
