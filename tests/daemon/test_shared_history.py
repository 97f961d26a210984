"""History-prefix matching across processes: B continuing A's conversation gets A's warm thread."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from daemon_process import DaemonProcess

from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from claif_cod import CodexClient
    messages = json.loads(sys.argv[1])
    with CodexClient(daemon="require") as client:
        reply = client.chat.completions.create(model="o4-mini", messages=messages)
    print(reply.choices[0].message.content)
    """
)


def run(daemon: DaemonProcess, workdir: Path, messages: list[dict[str, str]]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(messages)],
        capture_output=True,
        text=True,
        check=True,
        env=daemon.env,
        cwd=workdir,
        timeout=60,
    )
    return out.stdout.strip()


def test_a_second_process_continues_the_first_ones_thread(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    history = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "from A"}]
    reply_a = run(daemon, workdir, history)
    assert reply_a == "Echo: from A"
    history += [{"role": "assistant", "content": reply_a}, {"role": "user", "content": "from B"}]
    assert run(daemon, workdir, history) == "[turn 2] Echo: from B"
    first, second = codex_model_server.requests
    assert first.body["prompt_cache_key"] == second.body["prompt_cache_key"]
    assert second.user_texts().count("from A") == 1  # continued, not re-injected


def test_a_session_follows_changed_settings(daemon: DaemonProcess, workdir: Path) -> None:
    """A named session keeps its thread when the caller changes sandbox or approval settings."""
    from claif_cod import CodexClient

    with CodexClient(daemon="require", session_id="moving") as client:
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
    with CodexClient(
        daemon="require", session_id="moving", sandbox_mode="workspace-write", approval_policy="never"
    ) as client:
        reply = client.chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": "[[tool:touch moved.txt]] go"}]
        )
    assert (reply.choices[0].message.content or "").startswith("Tool said:")
    assert (workdir / "moved.txt").exists()  # ran under the new sandbox, not the session's first one
