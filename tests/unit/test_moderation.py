"""``agentMessage.moderation`` (Codex 0.171) decoded from the wire, and a withheld answer's text.

No model response makes Codex moderate an answer (the verdict comes from OpenAI's own backend), so
these start from the item as Codex 0.171's schema describes it; tests/daemon/test_content_filter.py
sends it from a scripted Codex through every path.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from claif_cod.engine.wire_items import AgentMessageItem, decode_item
from claif_cod.openai_compat.text import ChoiceText


def item(moderation: object = None) -> AgentMessageItem:
    raw: dict[str, object] = {"type": "agentMessage", "id": "m1", "text": "the answer", "phase": "final_answer"}
    if moderation is not None:
        raw["moderation"] = moderation
    decoded = decode_item(msgspec.Raw(json.dumps(raw).encode()))
    assert isinstance(decoded, AgentMessageItem)
    return decoded


HIDE = {"mode": "hide", "version": 1, "replacement": {"kind": "wellbeingPromptHelpline"}}
BLOCK = {"mode": "block", "version": 1, "reason": {"kind": "protection", "protectionType": "x"}}
SHOW = {"mode": "show", "version": 1, "trustedContacts": "check", "annotation": None}


@pytest.mark.parametrize(
    ("moderation", "withheld"),
    [
        (None, False),
        ({"moderated": False}, False),
        ({"moderated": True, "display": None}, False),
        ({"moderated": True, "display": SHOW}, False),
        ({"moderated": True, "display": HIDE}, True),
        ({"moderated": True, "display": BLOCK}, True),
        ({"moderated": True, "display": {"mode": "blur", "version": 2}}, False),  # a mode from a later Codex
    ],
)
def test_withheld_only_when_codex_says_hide_or_block(moderation: object, withheld: bool) -> None:
    decoded = item(moderation)
    assert decoded.text == "the answer"
    assert decoded.withheld is withheld


def test_the_replacement_and_reason_kinds_are_kept() -> None:
    hidden = item({"moderated": True, "display": HIDE}).moderation
    assert hidden is not None and hidden.display is not None and hidden.display.replacement is not None
    assert hidden.display.replacement.kind == "wellbeingPromptHelpline"
    blocked = item({"moderated": True, "display": BLOCK}).moderation
    assert blocked is not None and blocked.display is not None and blocked.display.reason is not None
    assert blocked.display.reason.kind == "protection"


def test_a_withheld_message_leaves_no_text_in_a_whole_answer() -> None:
    text = ChoiceText(streaming=False)
    text.complete("m0", "preamble")
    text.delta("m1", "hidden words")
    text.withhold("m1")
    assert text.text == "preamble"


def test_a_stream_keeps_what_it_already_sent_and_sends_no_more() -> None:
    text = ChoiceText(streaming=True)
    assert text.delta("m1", "already ") == "already "  # sent at once: no stop sequence to hold back for
    text.withhold("m1")  # Codex's final item had more ("already streamed and then some")
    assert text.finish() == ""
    assert text.text == "already "
