"""Terminal escapes out of text a Codex process wrote for a terminal, before it goes into a message.

Codex colours its log lines (``\\x1b[2m2025-...\\x1b[0m \\x1b[31mERROR\\x1b[0m``) even into a pipe;
quoted raw in an error message they show up as garbage, or recolour the reader's terminal.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\|$)"  # OSC (a title, a hyperlink): to BEL or ST, or cut off at the end
    r"|\x1b\[[0-?]*[ -/]*(?:[@-~]|$)"  # CSI (colours, cursor moves), or one cut off at the end
    r"|\x1b[ -/]*[0-~]?"  # any other escape (a charset, a keypad mode), or a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as one C1 character
)


def strip_ansi(text: str) -> str:
    """``text`` without its ANSI escape sequences (CSI, OSC and the other ESC sequences)."""
    return _ESCAPES.sub("", text) if "\x1b" in text or "\x9b" in text else text
