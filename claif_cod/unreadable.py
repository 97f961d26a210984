"""What msgspec raises for input it cannot read, whichever decoder reads it, and why in plain words.

Besides ``DecodeError`` (and its subclass ``ValidationError``), it raises ``RecursionError`` for
JSON nested deeper than Python's recursion limit (~1000 levels) and ``UnicodeDecodeError`` for
invalid UTF-8 inside a string it materialises: a client's bytes must never make either a 500.
"""

from __future__ import annotations

import codecs
import re

import msgspec

UNREADABLE = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)

_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def unreadable_reason(error: BaseException, body: bytes) -> str:
    """Why ``body`` is not JSON, where msgspec's own words mislead: for a lone surrogate escape
    (``"\\ud800"``, which Python's ``json.dumps`` writes for a string holding one) it says "Input data
    was truncated"; for an empty body, the same; for a body that begins with a UTF-8 byte order mark
    (Windows tools write one) or is UTF-16, "invalid character (byte 0)"."""
    if isinstance(error, msgspec.DecodeError) and not isinstance(error, msgspec.ValidationError):
        if not body.strip():
            return "it is empty"
        if body.startswith(codecs.BOM_UTF8):
            return "it begins with a byte order mark (U+FEFF), which JSON text must not"
        if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "it is UTF-16 text (JSON is sent as UTF-8)"
        if _LONE_SURROGATE.search(body):
            return "invalid \\u escape: a lone UTF-16 surrogate is not a character"
    return str(error)
