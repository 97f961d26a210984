"""A request body read lightly: its parameter names, and only the values that say what a request
ignores, in one pass (a long history is skipped, not built).  What the daemon client needs to
report ignored parameters; the daemon parses and validates the whole request itself."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)

top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
"""The parameter names alone: values stay unparsed bytes (cheap for a long history)."""


class LightParse(Generic[S]):
    """``body``'s parameters as unparsed values, and the fields of ``reported`` decoded from theirs."""

    def __init__(self, reported: type[S]) -> None:
        self._decoder = msgspec.json.Decoder(reported)
        self._keys = {name: msgspec.json.encode(name) + b":" for name in reported.__struct_fields__}

    def __call__(self, body: bytes) -> tuple[dict[str, msgspec.Raw], S]:
        """Raises ``msgspec.DecodeError`` for a body that is not a JSON object or holds bad values."""
        values = top_level.decode(body)
        keys = self._keys
        return values, self._decoder.decode(b"{" + b",".join(keys[k] + values[k] for k in keys if k in values) + b"}")
