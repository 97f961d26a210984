"""An answer Codex's moderation hides or blocks ends with ``finish_reason="content_filter"`` and
without its text, in-process, through the daemon's socket and through its HTTP endpoint.

Codex (0.171) only moderates answers of OpenAI's own backend, so a scripted Codex
(``tests/fakes/fake_codex.py``, marker ``[[moderation:MODE]]``) sends the item as 0.171's schema
describes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from daemon_process import DaemonProcess
from fake_codex_bin import write_fake_codex

from claif_cod import CodexClient

PATHS = ("in-process", "daemon", "http")


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    return write_fake_codex(tmp_path)


@pytest.fixture
def clients(
    fake_codex: Path, daemon_env: dict[str, str], tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, openai.OpenAI]]:
    monkeypatch.setenv("CLAIF_COD_CODEX_PATH", str(fake_codex))
    process = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]),
        state_dir=tmp_path / "state",
        log=tmp_path / "codd.log",
        env={**daemon_env, "CLAIF_COD_CODEX_PATH": str(fake_codex)},
    )
    process.start("--http", "127.0.0.1:0", "--http-working-dir", str(workdir))
    url = process.status().http
    assert url is not None
    made = {
        "in-process": CodexClient(daemon="off", model="fake-model"),
        "daemon": CodexClient(daemon="require", model="fake-model"),
        "http": openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0),
    }
    try:
        yield made
    finally:
        for client in made.values():
            client.close()
        process.stop()


def ask(client: openai.OpenAI, text: str) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": text}])


def test_hidden_and_blocked_answers_are_filtered_on_every_path(clients: dict[str, openai.OpenAI]) -> None:
    for path in PATHS:
        for mode in ("hide", "block"):
            choice = ask(clients[path], f"[[reply:the secret answer]] [[moderation:{mode}]]").choices[0]
            assert (path, mode, choice.finish_reason, choice.message.content) == (path, mode, "content_filter", "")
        shown = ask(clients[path], "[[reply:a fine answer]] [[moderation:show]]").choices[0]
        assert (path, shown.finish_reason, shown.message.content) == (path, "stop", "a fine answer")


def test_a_stream_ends_with_content_filter_on_every_path(clients: dict[str, openai.OpenAI]) -> None:
    for path in PATHS:
        stream = clients[path].chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "[[reply:streamed then hidden]] [[moderation:hide]]"}],
            stream=True,
        )
        chunks = [chunk.choices[0] for chunk in stream if chunk.choices]
        assert (path, chunks[-1].finish_reason) == (path, "content_filter")
        assert all(c.finish_reason is None for c in chunks[:-1])
