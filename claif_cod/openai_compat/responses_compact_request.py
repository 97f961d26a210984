"""What a ``responses.compact`` request asks (its body read, the summary turn's ``responses.create``
body, what it reports as ignored): apart from :mod:`.responses_compact`, which runs the turn, so that
a client of the daemon reads what it reports without the Responses service.
"""

from __future__ import annotations

from typing import Any

import msgspec

from claif_cod.engine.errors import InvalidRequest, ReadingBody
from claif_cod.openai_compat.light_parse import RESPONSES_DEFAULTS, top_level, unhonoured
from claif_cod.openai_compat.responses_request import responses_ignored

COMPACT_PROMPT = (
    "Compact this conversation: write a summary of everything above that lets the work go on without "
    "it. Keep the goals and constraints the user gave, the decisions taken, what has been done and "
    "found (files, commands, results), what is still open, and the next steps. Answer with the summary "
    "alone."
)
HONOURED = frozenset({"model", "input", "instructions", "previous_response_id", "strict"})
NO_EFFECT = frozenset({"safety_identifier"})
"""As for ``responses.create``: never changes an answer. Every other key is reported."""


class CompactBody(msgspec.Struct):
    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    strict: bool | None = None


_encoder = msgspec.json.Encoder()


def compact_ignored(body: bytes) -> tuple[str, ...]:
    """What :func:`.responses_compact.compact` reports as ignored, for a daemon client (the daemon
    checks the request)."""
    try:
        request, ignored = read_compact(body)
    except InvalidRequest:
        return ()
    return tuple(sorted({*ignored, *responses_ignored(turn_body(request, strict=False))}))


def read_compact(body: bytes) -> tuple[CompactBody, list[str]]:
    with ReadingBody(body):
        request = msgspec.json.decode(body, type=CompactBody)
        keys = top_level.decode(body)
    return request, sorted(unhonoured(keys, HONOURED, NO_EFFECT, RESPONSES_DEFAULTS))


def turn_body(request: CompactBody, *, strict: bool) -> bytes:
    """The ``responses.create`` body of the turn that writes the summary."""
    turn = {
        "model": request.model,
        "instructions": request.instructions,
        "previous_response_id": request.previous_response_id,
        "input": [*own_input(request), {"role": "user", "content": COMPACT_PROMPT}],
        "store": False,
        "strict": strict,
    }
    return _encoder.encode(turn)


def own_input(request: CompactBody) -> list[dict[str, Any]]:
    return [{"role": "user", "content": request.input}] if isinstance(request.input, str) else request.input or []
