"""A daemon of an older release (started before claif_cod was upgraded) speaks the client's protocol
but lacks what was added since. A request needing what its ``hello`` does not name is refused before
it is sent, naming both releases and the restart: before, an unknown method came back as
"claif-codd: unknown method '...'", and a member of a request the daemon did not know (a
``responses.create`` body's ``conversation``, ``before`` of ``responses.input_items.list``) was
ignored, the request answered as if it had not been sent. An unknown method despite the
capabilities says the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from old_daemon import OldDaemon, old_daemon

from claif_cod import CodexClient
from claif_cod.protocol.capabilities import DAEMON_CAPABILITIES, INPUT_ITEMS_BEFORE

pytestmark = pytest.mark.filterwarnings("ignore:claif-codd at .* runs claif_cod 0.2.9")

BEFORE_CONVERSATIONS = ["chat", "responses", "sessions", "approvals", "cancel"]
"""What a daemon from before the Conversations API names."""
BEFORE_INPUT_ITEMS_BEFORE = [name for name in DAEMON_CAPABILITIES if name != INPUT_ITEMS_BEFORE]


@pytest.fixture
def before_conversations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OldDaemon]:
    yield from old_daemon(tmp_path, monkeypatch, BEFORE_CONVERSATIONS)


@pytest.fixture
def before_input_items_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OldDaemon]:
    yield from old_daemon(tmp_path, monkeypatch, BEFORE_INPUT_ITEMS_BEFORE)


@pytest.fixture
def knows_less_than_it_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OldDaemon]:
    yield from old_daemon(tmp_path, monkeypatch, list(DAEMON_CAPABILITIES))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[CodexClient]:
    with CodexClient(daemon="require", working_dir=tmp_path, max_retries=0) as client:
        yield client


def says_restart(failure: openai.APIConnectionError, lacks: str) -> None:
    message = str(failure)
    assert f"(claif_cod 0.2.9, pid 4242) does not serve {lacks}" in message
    assert "it runs an older claif_cod than this client" in message
    assert "restart it (`claif-codd stop`, then `claif-codd start`" in message


def test_a_method_the_daemon_does_not_name_is_refused_before_it_is_sent(
    before_conversations: OldDaemon, client: CodexClient
) -> None:
    with pytest.raises(openai.APIConnectionError) as refused:
        client.conversations.create()
    says_restart(refused.value, "conversations.create as sent (it lacks the capability conversations)")
    with pytest.raises(openai.APIConnectionError) as refused:
        client.responses.compact(model="o4-mini", input="compact me")
    says_restart(refused.value, "responses.compact as sent (it lacks the capability responses.compact)")
    assert before_conversations.methods == []


def test_a_conversation_is_not_sent_to_a_daemon_that_would_ignore_it(
    before_conversations: OldDaemon, client: CodexClient
) -> None:
    """Twice: the second ``create()`` goes on the caller's own connection (transport/direct_daemon.py)."""
    for _ in range(2):
        with pytest.raises(openai.APIConnectionError) as refused:
            client.responses.create(model="o4-mini", input="hi", conversation="conv_1")
        says_restart(refused.value, "responses.create as sent (it lacks the capability conversations)")
    assert before_conversations.methods == []


def test_before_is_not_sent_to_a_daemon_that_would_list_the_first_page(
    before_input_items_before: OldDaemon, client: CodexClient
) -> None:
    with pytest.raises(openai.APIConnectionError) as refused:
        client.responses.input_items.list("resp_1", extra_query={"before": "msg_2"})
    lacks = "responses.input_items.list as sent (it lacks the capability responses.input_items.before)"
    says_restart(refused.value, lacks)
    assert before_input_items_before.methods == []


def test_an_unknown_method_says_the_daemon_is_to_be_restarted(
    knows_less_than_it_says: OldDaemon, client: CodexClient
) -> None:
    with pytest.raises(openai.APIConnectionError) as refused:
        client.conversations.items.list("conv_1")
    says_restart(refused.value, "a method this client sends (unknown method 'conversations.items.list')")
    assert knows_less_than_it_says.methods == ["conversations.items.list"]
