"""A request body read lightly: its parameter names, and only the values that say what a request
ignores, in one pass (a long history is skipped, not built).  What the daemon client needs to
report ignored parameters; the daemon parses and validates the whole request itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)

top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
"""The parameter names alone: values stay unparsed bytes (cheap for a long history)."""

_NOTHING = frozenset({b"null", b"[]"})
_BLANKS = b" \t\r\n"
CHAT_DEFAULTS: Mapping[str, object] = {"service_tier": "auto", "logprobs": False, "modalities": ["text"]}
RESPONSES_DEFAULTS: Mapping[str, object] = {"service_tier": "auto", "truncation": "disabled"}
"""OpenAI's default values that ask for what Codex does anyway: the tier Codex's requests get
without one, no truncation of the context (Codex compacts, it does not drop), no log-probabilities
(``logprobs`` is always null), text output only. Not OpenAI's default verbosity, ``medium``: Codex
asks each model for its catalog's (``low`` for Codex's own models)."""


def unhonoured(
    values: Mapping[str, msgspec.Raw],
    honoured: frozenset[str],
    no_effect: frozenset[str],
    defaults: Mapping[str, object],
) -> list[str]:
    """The parameters of ``values`` that ask for something claif_cod does not do. A ``null`` or ``[]``
    asks for nothing: OpenAI takes it as the default (openai's client sends a parameter passed as
    ``None`` as null, and openai-agents sends ``include: []`` with every request), and neither does
    one of the API's ``defaults`` (:data:`CHAT_DEFAULTS`, :data:`RESPONSES_DEFAULTS`) sent as a
    value. Not so ``{}``: ``web_search_options: {}`` asks for a web search."""
    return [
        key
        for key, value in values.items()
        if key not in honoured
        and key not in no_effect
        and (given := bytes(value)).translate(None, _BLANKS) not in _NOTHING
        and not (key in defaults and _is(given, defaults[key]))
    ]


def _is(given: bytes, default: object) -> bool:
    """Whether the JSON ``given`` is ``default``, however it is spaced (``false`` is not ``0``)."""
    value = msgspec.json.decode(given)
    return type(value) is type(default) and value == default


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
