"""Text from others, made safe to write to a terminal or a log: its hidden characters written out.

Strings from a model (a command it asks to run, a path, a diff) and from clients (an HTTP path, ids,
names) reach the CLI's questions and the daemon's console log. Written raw, a carriage return or an
escape sequence redraws the line (``touch x # ESC[2K CR ls`` then reads ``ls``), a bidi override
reorders it, a NUL ends up in a log file. One rule for both places.
"""

from __future__ import annotations

import unicodedata

_HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp"))
"""Unicode's control, format and line/paragraph separator characters: none shows as itself."""

LINES = frozenset("\t\n")
"""Controls that text laid out in lines keeps (a heredoc's lines, a diff's tabs, a traceback)."""


def visible(text: str, keep: frozenset[str] = frozenset()) -> str:
    """``text`` with its hidden characters but those in ``keep`` written as Python escapes
    (ESC as ``\\x1b``, a right-to-left override as ``\\u202e``)."""
    if text.isprintable():  # (none hidden)
        return text
    return "".join(
        char
        if char in keep or unicodedata.category(char) not in _HIDDEN
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
