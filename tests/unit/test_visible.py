"""Hidden characters in text from others are written out, wherever we show it (claif_cod._visible)."""

from __future__ import annotations

import pytest

from claif_cod._visible import LINES, visible
from claif_cod.cli.sessions import listing_lines
from claif_cod.protocol import SessionInfo


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain ünïcode text", "plain ünïcode text"),
        ("clear\x1b[2J\r", "clear\\x1b[2J\\r"),
        ("abc\u202edef", "abc\\u202edef"),  # a bidi override
        ("one\u2028two\u2029", "one\\u2028two\\u2029"),  # line and paragraph separators
        ("tag\U000e0041", "tag\\U000e0041"),  # a format character past the BMP
        ("nul\x00 c1\x9b", "nul\\x00 c1\\x9b"),
        ("lines\n\tand tabs", "lines\\n\\tand tabs"),
    ],
)
def test_hidden_characters_are_written_as_escapes(text: str, shown: str) -> None:
    assert visible(text) == shown


def test_text_in_lines_keeps_its_lines_and_tabs() -> None:
    assert visible("a\n\tb\x1b[8m\r", LINES) == "a\n\tb\\x1b[8m\\r"


def test_a_session_listing_writes_out_a_folders_hidden_characters() -> None:
    """A folder's name may hold any character but '/': ``claif-cod sessions`` and ``claif-codd
    sessions`` wrote it raw to the terminal."""
    info = SessionInfo(
        session_id="s",
        thread_id="t",
        working_dir="/w/\x1b]0;title\x07x",
        turns=1,
        busy=False,
        last_used=0.0,
        codex_home="/h/\u202ex",
    )
    lines = listing_lines([info, info])
    assert all("\x1b" not in line and "\u202e" not in line for line in lines), lines
    assert "/w/\\x1b]0;title\\x07x  (CODEX_HOME /h/\\u202ex)" in lines[0]
