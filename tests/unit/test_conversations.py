"""history_hash and ConversationIndex: mapping stateless chat histories onto warm Codex threads."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from claif_cod.engine.config import ProcessKey
from claif_cod.engine.conversations import Conversation, ConversationIndex, Message, history_hash, results_then_said
from claif_cod.engine.images import Image
from claif_cod.engine.tools import ToolCall, ToolResult

KEY = ProcessKey(
    codex_path="/usr/bin/codex",
    codex_home="/home/u/.codex",
    key_fingerprint="0123456789ab",
    working_dir="/work",
    sandbox="read-only",
    approval="never",
)
HISTORY = (Message("user", "hi"), Message("assistant", "hello"))


def test_hash_is_stable() -> None:
    first = history_hash(KEY, "be brief", HISTORY)
    again = history_hash(dataclasses.replace(KEY), "be brief", tuple(Message(m.role, m.text) for m in HISTORY))
    assert first == again
    assert len(first) == 64
    int(first, 16)


@pytest.mark.parametrize(
    "other",
    [
        (Message("assistant", "hi"), Message("assistant", "hello")),  # role
        (Message("user", "hi!"), Message("assistant", "hello")),  # text
        (Message("assistant", "hello"), Message("user", "hi")),  # order
        (Message("user", "hi"),),  # length
        (*HISTORY, Message("user", "more")),
        (),
    ],
    ids=["role", "text", "order", "shorter", "longer", "empty"],
)
def test_hash_depends_on_the_messages(other: tuple[Message, ...]) -> None:
    assert history_hash(KEY, "i", HISTORY) != history_hash(KEY, "i", other)
    assert history_hash(KEY, "i", HISTORY) != history_hash(KEY, "i", HISTORY, api="responses")


def test_message_boundaries_matter() -> None:
    a = (Message("user", "ab"), Message("user", "c"))
    b = (Message("user", "a"), Message("user", "bc"))
    assert history_hash(KEY, None, a) != history_hash(KEY, None, b)


def test_results_then_said_are_the_results_before_the_last_user_messages_only() -> None:
    call, result = ToolCall("c1", "f", "{}"), ToolResult("c1", "out")
    assert results_then_said((*HISTORY, call, result)) == (result,)
    assert results_then_said((*HISTORY, call, result, Message("user", "see"), Message("user", "this"))) == (result,)
    assert results_then_said((*HISTORY, call, result, Message("assistant", "done"), Message("user", "next"))) == ()
    assert results_then_said(HISTORY) == ()


def test_a_tool_results_images_are_part_of_the_hash() -> None:
    image = Image("https://example.com/chart.png", b"png", "image/png")
    call = ToolCall("c1", "chart", "{}")
    plain = history_hash(KEY, None, (*HISTORY, call, ToolResult("c1", "out")))
    assert plain != history_hash(KEY, None, (*HISTORY, call, ToolResult("c1", "out", images=(image,))))


@pytest.mark.parametrize(("one", "two"), [(None, "x"), ("x", "y"), (None, ""), ("a\n\nb", "a\nb")])
def test_hash_depends_on_instructions(one: str | None, two: str | None) -> None:
    assert history_hash(KEY, one, HISTORY) != history_hash(KEY, two, HISTORY)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("codex_path", "/opt/codex"),
        ("codex_home", None),
        ("codex_home", "/elsewhere"),
        ("key_fingerprint", None),
        ("key_fingerprint", "ba9876543210"),
        ("working_dir", "/work/other"),
        ("sandbox", "workspace-write"),
        ("sandbox", None),
        ("approval", "on-request"),
        ("approval", None),
    ],
)
def test_hash_depends_on_every_process_key_field(field: str, value: str | None) -> None:
    changes: dict[str, Any] = {field: value}
    other = dataclasses.replace(KEY, **changes)
    assert history_hash(KEY, None, HISTORY) != history_hash(other, None, HISTORY)


def test_every_process_key_field_is_covered() -> None:
    names = {f.name for f in dataclasses.fields(ProcessKey) if f.compare}  # what tells processes apart
    assert names == {"codex_path", "codex_home", "key_fingerprint", "working_dir", "sandbox", "approval"}


def test_continued_history_hashes_like_the_next_request() -> None:
    conversation = Conversation(instructions="i", history=HISTORY, prompt="next")
    continued = conversation.continued(("reply",))
    assert continued == (*HISTORY, Message("user", "next"), Message("assistant", "reply"))
    assert history_hash(KEY, "i", continued) == history_hash(
        KEY,
        "i",
        (Message("user", "hi"), Message("assistant", "hello"), Message("user", "next"), Message("assistant", "reply")),
    )


def test_a_reply_of_several_messages_continues_as_several_assistant_messages() -> None:
    conversation = Conversation(instructions="i", history=HISTORY, prompt="next")
    sent = (*HISTORY, Message("user", "next"))
    assert conversation.continued(("plan", "answer")) == (
        *sent,
        Message("assistant", "plan"),
        Message("assistant", "answer"),
    )
    assert conversation.continued(("", "answer")) == (*sent, Message("assistant", "answer"))
    assert conversation.continued(()) == conversation.continued(("",)) == (*sent, Message("assistant", ""))


# --- the index ----------------------------------------------------------------------------


def test_take_returns_and_removes() -> None:
    index = ConversationIndex()
    index.remember("h1", "t1")
    assert index.peek("h1") == "t1"
    assert len(index) == 1
    assert index.take("h1") == "t1"
    assert index.take("h1") is None
    assert index.peek("h1") is None
    assert len(index) == 0


def test_take_of_an_unknown_hash() -> None:
    assert ConversationIndex().take("nope") is None


def test_second_concurrent_request_misses() -> None:
    index = ConversationIndex()
    index.remember("h", "t")
    assert [index.take("h"), index.take("h")] == ["t", None]


def test_remember_replaces() -> None:
    index = ConversationIndex()
    index.remember("h", "t1")
    index.remember("h", "t2")
    assert len(index) == 1
    assert index.take("h") == "t2"


def test_lru_capacity_evicts_the_oldest() -> None:
    index = ConversationIndex(capacity=3)
    for i in range(5):
        index.remember(f"h{i}", f"t{i}")
    assert len(index) == 3
    assert [index.peek(f"h{i}") for i in range(5)] == [None, None, "t2", "t3", "t4"]


def test_remembering_again_refreshes_an_entry() -> None:
    index = ConversationIndex(capacity=2)
    index.remember("a", "ta")
    index.remember("b", "tb")
    index.remember("a", "ta")
    index.remember("c", "tc")
    assert index.peek("a") == "ta"
    assert index.peek("b") is None
    assert index.peek("c") == "tc"


def test_peek_does_not_remove() -> None:
    index = ConversationIndex()
    index.remember("a", "t")
    assert index.peek("a") == index.peek("a") == "t"
    assert len(index) == 1


def test_forget_thread_removes_every_hash_of_that_thread() -> None:
    index = ConversationIndex()
    index.remember("h1", "t1")
    index.remember("h2", "t1")
    index.remember("h3", "t2")
    index.forget_thread("t1")
    assert len(index) == 1
    assert index.peek("h1") is None
    assert index.peek("h2") is None
    assert index.peek("h3") == "t2"
    index.forget_thread("unknown")
    assert len(index) == 1


def test_forgetting_a_thread_spares_what_moved_to_another_or_left() -> None:
    index = ConversationIndex(capacity=3)
    index.remember("h1", "t1")
    index.remember("h2", "t1")
    index.remember("h1", "t2")  # h1 now continues t2
    assert index.take("h2") == "t1"
    index.forget_thread("t1")  # t1 has nothing left
    assert index.peek("h1") == "t2"
    for i in range(4):  # h1 is evicted, then its thread forgotten: nothing to trip over
        index.remember(f"x{i}", "t3")
    index.forget_threads({"t2", "t3"})
    assert len(index) == 0


def test_default_capacity_is_large() -> None:
    index = ConversationIndex()
    for i in range(1000):
        index.remember(str(i), str(i))
    assert len(index) == 1000


def test_running_digests_equal_the_full_hash_with_tools_and_calls() -> None:
    from claif_cod.engine.tools import NO_TOOLS, ThreadTools, ToolCall, ToolResult, ToolSpec

    tools = ThreadTools(specs=(ToolSpec(name="f", description="d", parameters={"type": "object"}),))
    call = ToolCall(call_id="c1", name="f", arguments='{"a": 1}')
    history = (*HISTORY, call, ToolResult(call_id="c1", output="out"))
    for prompt in ("next", None):
        conversation = Conversation("i", history, prompt)
        for t in (NO_TOOLS, tools):
            assert conversation.history_digest(KEY, t) == history_hash(KEY, "i", history, t)
            assert conversation.sent_digest(KEY, t) == history_hash(KEY, "i", conversation.sent(), t)
            cases: tuple[tuple[tuple[str, ...], tuple[ToolCall, ...]], ...] = (
                (("reply",), ()),
                ((), (call,)),
                (("",), (call,)),
                (("text",), (call,)),
                (("a", "b"), ()),
            )
            for reply, calls in cases:
                assert conversation.continued_digest(KEY, reply, t, calls) == history_hash(
                    KEY, "i", conversation.continued(reply, calls), t
                )
    assert history_hash(KEY, "i", history, tools) != history_hash(KEY, "i", history, NO_TOOLS)


def test_running_digests_equal_the_full_hashes() -> None:
    """The engine hashes a request's history once and extends that hash by the reply."""
    conversation = Conversation(instructions="i", history=HISTORY, prompt="next")
    assert conversation.history_digest(KEY) == history_hash(KEY, "i", HISTORY)
    assert conversation.continued_digest(KEY, ("reply",)) == history_hash(KEY, "i", conversation.continued(("reply",)))
    assert conversation.continued_digest(KEY, ("other",)) != conversation.continued_digest(KEY, ("reply",))
    assert conversation.history_digest(KEY) == history_hash(KEY, "i", HISTORY)  # extending left the state alone


def test_images_are_hashed_by_their_source_however_the_history_is_split() -> None:
    """An image counts by where the caller had it from (the bytes are kept for Codex, not hashed),
    whether its message is hashed with the history or as part of a turn's new items."""
    from claif_cod.engine.images import Image
    from claif_cod.engine.tools import ToolCall

    def looking(data: bytes) -> Message:
        return Message("user", "look", (Image("sha256:abc", data, "image/png"),))

    assert history_hash(KEY, None, (looking(b"1"),)) == history_hash(KEY, None, (looking(b"2"),))
    assert history_hash(KEY, None, (looking(b"1"),)) != history_hash(KEY, None, (Message("user", "look"),))
    call = ToolCall(call_id="c1", name="f", arguments="{}")
    conversation = Conversation(None, (looking(b"1"),), "next")
    for reply, calls in ((("reply",), ()), (("text",), (call,))):
        expected = history_hash(KEY, None, conversation.continued(reply, calls))
        assert conversation.continued_digest(KEY, reply, calls=calls) == expected
