"""Whether a string can be sent as UTF-8: Python holds a byte that was not UTF-8 (a file name's, a
terminal's, a header's) as a lone surrogate, which Codex, JSON and the socket all refuse."""

from __future__ import annotations


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
