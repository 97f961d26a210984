"""What msgspec raises for input it cannot read, whichever decoder reads it.

Besides ``DecodeError`` (and its subclass ``ValidationError``), it raises ``RecursionError`` for
JSON nested deeper than Python's recursion limit (~1000 levels) and ``UnicodeDecodeError`` for
invalid UTF-8 inside a string it materialises: a client's bytes must never make either a 500.
"""

from __future__ import annotations

import msgspec

UNREADABLE = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)
