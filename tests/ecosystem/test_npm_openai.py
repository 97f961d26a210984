"""The npm ``openai`` SDK (Node.js) against ``claif-codd serve --http``: chat, chat tools and ``/v1/responses``.

The SDK is installed with npm into a private directory per test session; the client script is
``npm_openai_client.mjs`` beside this file, written as the SDK's README shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ecosystem_support import Requests

pytestmark = [
    pytest.mark.codex,
    pytest.mark.skipif(
        shutil.which("node") is None or shutil.which("npm") is None, reason="Node.js and npm are not installed"
    ),
]

NPM_OPENAI = "openai@7"
SCRIPT = Path(__file__).with_name("npm_openai_client.mjs")


@pytest.fixture(scope="session")
def node_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private directory with the npm ``openai`` package and the client script."""
    root = tmp_path_factory.mktemp("npm-openai")
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(root), NPM_OPENAI],
        check=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    shutil.copy(SCRIPT, root / SCRIPT.name)  # ESM resolves "openai" from the script's own directory
    return root / SCRIPT.name


def run_node(script: Path, scenario: str, base_url: str) -> Any:
    done = subprocess.run(
        ["node", str(script), scenario, base_url], capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_chat_completion(node_client: Path, http_url: str, model: Requests) -> None:
    assert run_node(node_client, "chat", http_url) == {"content": "Echo: hello node"}
    assert [r.user_texts()[-1] for r in model.since()] == ["hello node"]


def test_chat_completion_stream(node_client: Path, http_url: str, model: Requests) -> None:
    deltas = run_node(node_client, "chatStream", http_url)["deltas"]

    assert len([d for d in deltas if d]) > 1
    assert "".join(deltas) == "Echo: one two three"


def test_chat_tool_call_round_trip(node_client: Path, http_url: str, model: Requests) -> None:
    seen = run_node(node_client, "chatTools", http_url)

    assert seen == {
        "finishReason": "tool_calls",
        "calls": [["get_weather", {"city": "Lima"}]],
        "content": "Tool get_weather returned: Sunny in Lima",
    }
    assert model.since()[0].tool("get_weather") is not None


def test_responses_create_continue_and_retrieve(node_client: Path, http_url: str, model: Requests) -> None:
    seen = run_node(node_client, "responses", http_url)

    assert seen == {
        "first": "Echo: hello responses",
        "second": "[turn 2] Echo: and again",
        "retrieved": "Echo: hello responses",
    }
    first, second = model.since()
    assert any("NODE-RULE-2" in text for text in first.developer_texts())
    # previous_response_id continued the same Codex thread (Codex keys the prompt cache by thread).
    assert first.body["prompt_cache_key"] == second.body["prompt_cache_key"]


def test_responses_function_tool_round_trip(node_client: Path, http_url: str, model: Requests) -> None:
    seen = run_node(node_client, "responsesTools", http_url)

    assert seen == {"calls": [["get_weather", {"city": "Kyiv"}]], "content": "Tool get_weather returned: Sunny in Kyiv"}


def test_a_timeout_given_per_call_ends_the_turn_and_is_not_retried_once_it_acted(
    node_client: Path, http_url: str, model: Requests, eco_workdir: Path
) -> None:
    """The SDK's ``X-Stainless-Timeout``: the daemon answers the 504 before the SDK gives up, and
    ``x-should-retry: false`` keeps the SDK's retries from running the command again."""
    (eco_workdir / "ran.txt").unlink(missing_ok=True)
    seen = run_node(node_client, "timeoutAfterCommand", http_url)

    assert seen == {"error": "InternalServerError", "status": 504, "shouldRetry": "false"}
    assert (eco_workdir / "ran.txt").read_text() == "ran\n"
    assert len(model.since()) == 2  # the command's call and the slow follow-up, once
