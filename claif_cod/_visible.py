"""Text from others, made safe to write to a terminal or a log: its hidden characters written out.

Strings from a model (a command it asks to run, a path, a diff) and from clients (an HTTP path, ids,
names) reach the CLI's questions and the daemon's console log. Written raw, a carriage return or an
escape sequence redraws the line (``touch x # ESC[2K CR ls`` then reads ``ls``), a bidi override
reorders it, a NUL ends up in a log file. One rule for both places.
"""

from __future__ import annotations

import re
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


_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and newline, DEL, C1 controls: what a terminal acts on rather than shows."""


def without_controls(text: str) -> str:
    """``text`` for a terminal: its control characters (an escape sequence's ESC, a carriage return, a
    C1 CSI) written as Python escapes, its tabs and newlines kept.  Unlike :func:`visible`, format
    characters stay: a model's prose holds them as text does (an emoji's zero-width joiner, Persian's
    zero-width non-joiner), and none of them moves the cursor or sets the terminal's state."""
    return _CONTROLS.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)
