"""ChoiceText: streamed answer text across several messages, Codex retries and stop sequences."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claif_cod.openai_compat.text import MESSAGE_SEPARATOR, ChoiceText, RetryDiverged


def feed(choice: ChoiceText, item_id: str, *deltas: str) -> list[str]:
    return [choice.delta(item_id, d) for d in deltas]


# --- plain streaming ------------------------------------------------------------------------


def test_plain_deltas_go_straight_out() -> None:
    choice = ChoiceText()
    assert feed(choice, "m1", "Hel", "lo", " world") == ["Hel", "lo", " world"]
    assert choice.text == choice.sent == "Hello world"
    assert choice.finish() == ""
    assert not choice.stopped


def test_empty_delta_emits_nothing() -> None:
    choice = ChoiceText()
    assert feed(choice, "m1", "", "a", "") == ["", "a", ""]
    assert choice.text == "a"


def test_two_messages_are_separated_by_a_blank_line() -> None:
    choice = ChoiceText()
    out = feed(choice, "m1", "first", " part") + feed(choice, "m2", "second")
    assert out == ["first", " part", MESSAGE_SEPARATOR + "second"]
    assert choice.text == "first part\n\nsecond"
    assert MESSAGE_SEPARATOR == "\n\n"


def test_three_messages() -> None:
    choice = ChoiceText()
    out = feed(choice, "a", "1") + feed(choice, "b", "2") + feed(choice, "c", "3", "4")
    assert "".join(out) == "1\n\n2\n\n34"


def test_empty_first_message_adds_no_separator() -> None:
    choice = ChoiceText()
    choice.complete("m1", "")
    assert feed(choice, "m2", "text") == ["text"]
    assert choice.text == "text"


# --- complete() -----------------------------------------------------------------------------


def test_complete_with_the_final_text_emits_the_rest() -> None:
    choice = ChoiceText()
    feed(choice, "m1", "Hello")
    assert choice.complete("m1", "Hello world") == " world"
    assert choice.complete("m1", "Hello world") == ""
    assert choice.finish() == ""
    assert choice.sent == "Hello world"


def test_complete_without_deltas() -> None:
    choice = ChoiceText()
    assert choice.complete("m1", "whole answer") == "whole answer"
    assert choice.complete("m2", "second") == "\n\nsecond"
    assert choice.text == "whole answer\n\nsecond"


def test_complete_contradicting_what_was_sent_is_an_error() -> None:
    choice = ChoiceText()
    feed(choice, "m1", "Hello")
    with pytest.raises(RetryDiverged):
        choice.complete("m1", "Goodbye")


# --- Codex retries --------------------------------------------------------------------------


def test_identical_resend_after_reset_is_swallowed_until_it_passes_the_sent_prefix() -> None:
    choice = ChoiceText()
    assert feed(choice, "m1", "Hello ", "wor") == ["Hello ", "wor"]
    choice.reset("m1")
    assert choice.text == ""
    assert feed(choice, "m1", "Hel", "lo w", "or") == ["", "", ""]
    assert choice.delta("m1", "ld!") == "ld!"
    assert choice.sent == "Hello world!"
    assert choice.finish() == ""


def test_resend_that_overshoots_in_one_delta_emits_only_the_new_part() -> None:
    choice = ChoiceText()
    feed(choice, "m1", "abc")
    choice.reset("m1")
    assert choice.delta("m1", "abcdef") == "def"


def test_reset_of_the_second_message_keeps_the_first() -> None:
    choice = ChoiceText()
    feed(choice, "m1", "one")
    feed(choice, "m2", "tw")
    choice.reset("m2")
    assert choice.text == "one"
    assert feed(choice, "m2", "t", "wo") == ["", "o"]
    assert choice.sent == "one\n\ntwo"


def test_divergent_resend_raises() -> None:
    choice = ChoiceText()
    feed(choice, "m1", "Hello world")
    choice.reset("m1")
    assert choice.delta("m1", "Hello") == ""
    with pytest.raises(RetryDiverged):
        choice.delta("m1", "!")


def test_divergent_resend_from_the_first_character_raises() -> None:
    choice = ChoiceText()
    feed(choice, "m1", "abc")
    choice.reset("m1")
    with pytest.raises(RetryDiverged):
        choice.delta("m1", "x")


def test_divergence_only_in_held_back_text_is_fine() -> None:
    choice = ChoiceText(stop=("STOP",))
    assert choice.delta("m1", "Hello wor") == "Hello "
    choice.reset("m1")
    assert choice.delta("m1", "Hello pal, bye") == "pal, "
    assert choice.finish() == "bye"


def test_reset_of_an_unknown_message_does_nothing() -> None:
    choice = ChoiceText()
    feed(choice, "m1", "abc")
    choice.reset("other")
    assert choice.delta("m1", "d") == "d"


# --- stop sequences -------------------------------------------------------------------------


def test_stop_split_across_deltas_is_never_partly_emitted() -> None:
    choice = ChoiceText(stop=("STOP",))
    out = feed(choice, "m1", "Hello ST", "OP and more")
    assert "ST" not in "".join(out)
    assert "".join(out) == "Hello "
    assert choice.stopped
    assert choice.finish() == ""
    assert choice.text == "Hello "


def test_stop_arriving_one_character_at_a_time() -> None:
    choice = ChoiceText(stop=("STOP",))
    out = feed(choice, "m1", *"ab STOP cd")
    assert "".join(out) + choice.finish() == "ab "
    assert all("S" not in piece for piece in out)


def test_near_miss_is_released_once_it_cannot_be_a_stop() -> None:
    choice = ChoiceText(stop=("STOP",))
    assert choice.delta("m1", "ST") == ""
    assert choice.delta("m1", "AR") == "S"
    assert choice.delta("m1", "T") == "T"
    assert choice.finish() == "ART"
    assert choice.sent == "START"


def test_stop_at_the_very_start() -> None:
    choice = ChoiceText(stop=("STOP",))
    assert choice.delta("m1", "STOP right there") == ""
    assert choice.stopped
    assert choice.finish() == ""
    assert choice.text == ""


def test_after_a_stop_nothing_more_is_taken() -> None:
    choice = ChoiceText(stop=("\n",))
    assert choice.delta("m1", "line one\nline two") == "line one"
    assert choice.delta("m1", "more") == ""
    assert choice.complete("m1", "line one\nline two more") == ""
    assert feed(choice, "m2", "next") == [""]
    choice.reset("m1")
    assert choice.text == "line one"


def test_earliest_of_several_stops_wins() -> None:
    choice = ChoiceText(stop=("world", "lo"))
    assert choice.delta("m1", "Hello world") + choice.finish() == "Hel"


def test_finish_releases_held_back_text() -> None:
    choice = ChoiceText(stop=("STOP",))
    assert choice.delta("m1", "abcdef") == "abc"
    assert choice.finish() == "def"
    assert choice.sent == "abcdef"
    assert not choice.stopped


def test_finish_releases_a_partial_stop() -> None:
    choice = ChoiceText(stop=("STOP",))
    assert choice.delta("m1", "end ST") == "end"
    assert choice.finish() == " ST"


def test_overlapping_stops_do_not_depend_on_how_the_text_was_split() -> None:
    # "c" completes inside the longer stop "abcd": generation ends there, as OpenAI's does.
    whole = ChoiceText(stop=("c", "abcd"))
    one_delta = whole.delta("m1", "xabcd") + whole.finish()
    split = ChoiceText(stop=("c", "abcd"))
    two_deltas = split.delta("m1", "xabc") + split.delta("m1", "d") + split.finish()
    assert one_delta == "xab"  # "c" is the first stop sequence to be completed
    assert two_deltas == one_delta


def test_stop_in_a_later_message() -> None:
    choice = ChoiceText(stop=("##",))
    out = feed(choice, "m1", "one") + feed(choice, "m2", "tw", "o#", "#three")
    assert "".join(out) + choice.finish() == "one\n\ntwo"


def test_stop_matching_the_message_separator() -> None:
    choice = ChoiceText(stop=("\n\n",))
    out = feed(choice, "m1", "first") + feed(choice, "m2", "second")
    assert "".join(out) + choice.finish() == "first"
    assert choice.stopped


def test_stop_inside_a_completed_message() -> None:
    choice = ChoiceText(stop=("END",))
    assert choice.complete("m1", "body END tail") + choice.finish() == "body "


def test_retry_then_stop() -> None:
    choice = ChoiceText(stop=("STOP",))
    sent = choice.delta("m1", "Hello there")
    choice.reset("m1")
    sent += "".join(feed(choice, "m1", "Hello ", "there ST", "OP"))
    assert sent + choice.finish() == "Hello there "


# --- property -----------------------------------------------------------------------------


def cut_at_first_stop(text: str, stops: tuple[str, ...]) -> str:
    """OpenAI's rule: generation ends where a stop sequence is first completed."""
    for end in range(1, len(text) + 1):
        for stop in stops:
            if text.endswith(stop, 0, end):
                return text[: end - len(stop)]
    return text


@st.composite
def split_text(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


ALPHABET = st.sampled_from("abST\n ")


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    text=st.text(ALPHABET, max_size=40),
    stops=st.lists(st.text(ALPHABET, min_size=1, max_size=5), max_size=4).map(tuple),
)
def test_emitted_text_is_the_text_cut_at_the_first_stop(data: st.DataObject, text: str, stops: tuple[str, ...]) -> None:
    deltas = data.draw(split_text(text))
    choice = ChoiceText(stop=stops)
    emitted = [choice.delta("m1", d) for d in deltas]
    emitted.append(choice.finish())
    expected = cut_at_first_stop(text, stops)
    assert "".join(emitted) == expected
    assert choice.text == expected
    # Nothing emitted before the end ever contains the start of a stop that later turned out to match.
    assert "".join(emitted[:-1]) == expected[: len("".join(emitted[:-1]))]


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    messages=st.lists(st.text(ALPHABET, min_size=1, max_size=15), min_size=1, max_size=4),
    stops=st.lists(st.text(ALPHABET, min_size=1, max_size=4), max_size=3).map(tuple),
)
def test_several_messages_are_joined_then_cut(data: st.DataObject, messages: list[str], stops: tuple[str, ...]) -> None:
    choice = ChoiceText(stop=stops)
    emitted: list[str] = []
    for index, message in enumerate(messages):
        emitted += [choice.delta(f"m{index}", d) for d in data.draw(split_text(message))]
    emitted.append(choice.finish())
    assert "".join(emitted) == cut_at_first_stop(MESSAGE_SEPARATOR.join(messages), stops)


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    text=st.text(ALPHABET, min_size=1, max_size=30),
    stops=st.lists(st.text(ALPHABET, min_size=1, max_size=4), max_size=3).map(tuple),
)
def test_an_identical_retry_changes_nothing(data: st.DataObject, text: str, stops: tuple[str, ...]) -> None:
    first = data.draw(split_text(text))
    partial = first[: data.draw(st.integers(0, len(first)))]
    choice = ChoiceText(stop=stops)
    emitted = [choice.delta("m1", d) for d in partial]
    choice.reset("m1")
    emitted += [choice.delta("m1", d) for d in data.draw(split_text(text))]
    emitted.append(choice.finish())
    assert "".join(emitted) == cut_at_first_stop(text, stops)


# --- a retry must never leave the client with text that is not the answer ----------------------


def stream_to_the_end(choice: ChoiceText, item_id: str, *deltas: str) -> str:
    return "".join(choice.delta(item_id, d) for d in deltas) + choice.finish()


def test_divergent_retry_cut_short_by_a_stop_raises() -> None:
    choice = ChoiceText(stop=("STOP",))
    assert choice.delta("m1", "Hello there") == "Hello th"
    choice.reset("m1")
    # The retry says "He" and then stops: the client already holds "Hello th", which is not the answer.
    with pytest.raises(RetryDiverged):
        stream_to_the_end(choice, "m1", "HeSTOP")


def test_retry_that_ends_short_of_what_was_sent_raises() -> None:
    choice = ChoiceText()
    assert choice.delta("m1", "Hello world") == "Hello world"
    choice.reset("m1")
    assert choice.delta("m1", "Hello") == ""  # still a prefix: could be a faithful resend
    # ...but the turn ends there: the answer is "Hello", the client streamed "Hello world".
    with pytest.raises(RetryDiverged):
        choice.finish()


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    first=st.text(ALPHABET, min_size=1, max_size=20),
    second=st.text(ALPHABET, max_size=20),
    stops=st.lists(st.text(ALPHABET, min_size=1, max_size=3), max_size=2).map(tuple),
)
def test_what_was_streamed_is_the_final_text_or_the_retry_is_refused(
    data: st.DataObject, first: str, second: str, stops: tuple[str, ...]
) -> None:
    choice = ChoiceText(stop=stops)
    emitted = [choice.delta("m1", d) for d in data.draw(split_text(first))]
    if choice.stopped:
        return  # the turn is interrupted at a stop: nothing Codex sends later changes the answer
    choice.reset("m1")
    try:
        emitted += [choice.delta("m1", d) for d in data.draw(split_text(second))]
        emitted.append(choice.finish())
    except RetryDiverged:
        return
    assert "".join(emitted) == choice.text == cut_at_first_stop(second, stops)
