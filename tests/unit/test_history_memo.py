"""HistoryMemo: a re-sent chat history is read (and hashed) once, with the same result as reading it anew."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from claif_cod.engine.config import ProcessKey
from claif_cod.engine.conversations import Conversation, Message, history_hash
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools import NO_TOOLS, ThreadTools, ToolCall, ToolSpec
from claif_cod.openai_compat.chat_history import HistoryMemo
from claif_cod.openai_compat.request import ParsedRequest, parse_chat_request

KEY = ProcessKey("/usr/bin/codex", None, None, "/work", "read-only", "never")
TOOLS = ThreadTools(specs=(ToolSpec(name="f", description="d", parameters={"type": "object"}),))
PNG_URL = (
    "data:image/png;base64,"
    + base64.b64encode(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
        )
    ).decode()
)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


FIRST = [{"role": "system", "content": "be brief"}, user("a first question, long enough to be kept by the memo")]


def parse(messages: list[dict[str, Any]], memo: HistoryMemo | None, *, spaced: bool = False) -> ParsedRequest:
    body = json.dumps({"model": "m", "messages": messages}, separators=None if spaced else (",", ":"))
    return parse_chat_request(body.encode(), default_model=None, strict=False, memo=memo)


def reused(later: Conversation, earlier: Conversation) -> bool:
    """Whether ``later`` took its first history items from ``earlier`` instead of reading them anew (the
    same objects, where a new read makes new ones)."""
    if not later.history:
        return later.prompt is earlier.prompt
    first = later.history[0]
    if earlier.history:
        return first is earlier.history[0]
    return isinstance(first, Message) and first.text is earlier.prompt


def digests(conversation: Conversation, tools: ThreadTools = NO_TOOLS) -> tuple[str, str, str]:
    return (
        conversation.history_digest(KEY, tools),
        conversation.sent_digest(KEY, tools),
        conversation.continued_digest(KEY, ("reply",), tools),
    )


def test_a_resent_history_is_read_once_and_makes_what_reading_it_anew_makes() -> None:
    memo = HistoryMemo()
    first = parse(FIRST, memo)
    messages = [*FIRST, assistant("an answer"), user("a second question")]
    second = parse(messages, memo)
    fresh = parse(messages, None)
    assert second.conversation == fresh.conversation
    assert second.request == fresh.request
    assert reused(second.conversation, first.conversation)
    assert second.request.messages[0] is first.request.messages[0]
    assert not reused(fresh.conversation, first.conversation)


@pytest.mark.parametrize("tools", [NO_TOOLS, TOOLS])
def test_a_resent_historys_digests_continue_the_earlier_requests_and_equal_the_full_hash(tools: ThreadTools) -> None:
    memo = HistoryMemo()
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    turns = [
        [*FIRST],
        [assistant("an answer"), user("next")],
        [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "out"},
        ],
        [assistant("done"), user("and again")],
    ]
    messages: list[dict[str, Any]] = []
    earlier: Conversation | None = None
    for added in turns:
        messages += added
        conversation = parse(messages, memo).conversation
        fresh = parse(messages, None).conversation
        assert digests(conversation, tools) == digests(fresh, tools)
        assert conversation.history_digest(KEY, tools) == history_hash(KEY, "be brief", fresh.history, tools)
        if earlier is not None:
            assert conversation.prior is not None  # the hash went on from the earlier request's
            assert reused(conversation, earlier)
        earlier = conversation


def test_the_hash_starts_over_when_the_new_messages_add_instructions() -> None:
    memo = HistoryMemo()
    first = parse(FIRST, memo).conversation
    first.history_digest(KEY)
    messages = [*FIRST, assistant("an answer"), {"role": "developer", "content": "also"}, user("next")]
    second = parse(messages, memo).conversation
    assert reused(second, first)
    assert second.prior is None
    assert second.instructions == "be brief\n\nalso"
    assert digests(second) == digests(parse(messages, None).conversation)


def test_a_changed_earlier_message_is_read_anew() -> None:
    memo = HistoryMemo()
    first = parse(FIRST, memo).conversation
    changed = [FIRST[0], user("a first question, long enough to be kept by the memo!"), assistant("a"), user("b")]
    second = parse(changed, memo).conversation
    assert not reused(second, first)
    assert second == parse(changed, None).conversation
    assert digests(second) == digests(parse(changed, None).conversation)


def test_the_same_request_again_and_a_body_with_spaces() -> None:
    memo = HistoryMemo()
    first = parse(FIRST, memo, spaced=True).conversation
    again = parse(FIRST, memo, spaced=True).conversation
    assert again == first
    assert reused(again, first)
    messages = [*FIRST, assistant("an answer"), user("next")]
    later = parse(messages, memo, spaced=True).conversation
    assert reused(later, again)
    assert later == parse(messages, None).conversation


def test_a_bad_new_message_is_reported_as_when_read_anew() -> None:
    memo = HistoryMemo()
    parse(FIRST, memo)
    for bad in ([*FIRST, assistant("a"), {"role": 7, "content": "x"}], [*FIRST, assistant("a"), {"role": "robot"}]):
        with pytest.raises(InvalidRequest) as with_memo:
            parse(bad, memo)
        with pytest.raises(InvalidRequest) as anew:
            parse(bad, None)
        assert (with_memo.value.message, with_memo.value.param) == (anew.value.message, anew.value.param)


def test_a_branch_from_an_extended_history_is_read_anew() -> None:
    """A read that one request extended gives way to that request's: a second branch reads it all."""
    memo = HistoryMemo()
    first = parse(FIRST, memo).conversation
    assert reused(parse([*FIRST, assistant("a"), user("one way")], memo).conversation, first)
    other = [*FIRST, assistant("a"), user("the other way")]
    branch = parse(other, memo).conversation
    assert not reused(branch, first)
    assert branch == parse(other, None).conversation


def loaded(messages: list[dict[str, Any]], memo: HistoryMemo | None) -> Conversation:
    parsed = parse(messages, memo)
    asyncio.run(parsed.with_images())
    return parsed.conversation


def test_images_short_histories_and_big_ones_are_not_kept() -> None:
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}
    for messages, memo in (
        ([*FIRST[:1], image, *FIRST[1:]], HistoryMemo()),
        ([user("hi")], HistoryMemo()),
        (FIRST, HistoryMemo(max_bytes=60)),
    ):
        first = parse(messages, memo).conversation
        later = [*messages, assistant("a"), user("b")]
        conversation = loaded(later, memo)
        assert not reused(conversation, first)
        assert conversation == loaded(later, None)  # an earlier image is loaded again with the history


def test_images_in_the_new_messages_are_loaded_after_a_reused_history() -> None:
    memo = HistoryMemo()
    first = parse(FIRST, memo).conversation
    image = {
        "role": "user",
        "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": PNG_URL}}],
    }
    parsed = parse([*FIRST, assistant("a"), image], memo)
    assert reused(parsed.conversation, first)
    asyncio.run(parsed.with_images())
    assert parsed.conversation.prompt == "look"
    assert len(parsed.conversation.prompt_images) == 1


def test_the_memo_is_bounded_by_reads_and_by_bytes() -> None:
    def conversation(i: int) -> list[dict[str, Any]]:
        return [user(f"conversation {i} starts with a question long enough to be kept")]

    head = len(json.dumps(conversation(0), separators=(",", ":"))) - 1  # what is kept: the JSON without its "]"
    held = 2 * head + 220  # what a read of one message is reckoned to hold
    for memo in (HistoryMemo(capacity=2), HistoryMemo(max_bytes=2 * held)):
        firsts = [parse(conversation(i), memo).conversation for i in range(3)]
        # Each sent again (a read of the same size replaces the one it extends), newest first:
        again = [parse(conversation(i), memo).conversation for i in (2, 1, 0)]
        assert [reused(b, firsts[i]) for i, b in zip((2, 1, 0), again, strict=True)] == [True, True, False]


def test_histories_sharing_their_start_are_kept_apart() -> None:
    memo = HistoryMemo()
    start = [{"role": "system", "content": "the same long system prompt that every one of these conversations has"}]
    firsts = [parse([*start, user(f"question {i}")], memo).conversation for i in range(17)]
    newest_first = range(16, -1, -1)
    later = [parse([*start, user(f"question {i}"), assistant("a"), user("b")], memo) for i in newest_first]
    assert [reused(b.conversation, firsts[i]) for i, b in zip(newest_first, later, strict=True)] == [True] * 16 + [
        False
    ]
    for i, parsed in zip(newest_first, later, strict=True):
        assert parsed.conversation.history[0] == Message("user", f"question {i}")


def test_tool_calls_in_the_reused_history_stay_calls() -> None:
    memo = HistoryMemo()
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        *FIRST,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    parse(messages, memo)
    later = parse([*messages, assistant("used it"), user("thanks")], memo).conversation
    assert ToolCall(call_id="c1", name="f", arguments="{}") in later.history


def test_a_history_bigger_than_the_memo_leaves_the_others_kept() -> None:
    memo = HistoryMemo(max_bytes=1000)
    first = parse(FIRST, memo).conversation
    parse([user("x" * 2000)], memo)
    assert reused(parse([*FIRST, assistant("a"), user("b")], memo).conversation, first)
