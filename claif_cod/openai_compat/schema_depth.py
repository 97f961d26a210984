"""How deep a caller's JSON schema may nest: Codex reads no deeper JSON.

Codex's app-server parses each JSON-RPC line with serde_json's default recursion limit (128 levels,
the whole message counted). A deeper line is not answered at all: Codex logs "Failed to deserialize
JSONRPCMessage: recursion limit exceeded" on its stderr and drops it, so the request that sent it (a
``thread/start`` carrying a tool's ``parameters``, a ``turn/start`` carrying a ``response_format`` or
``text.format`` schema) waited for Codex's answer until its deadline (30 s), then failed as a timeout,
which clients retry, only to wait again. The caller's JSON is what can nest that deep (everything else
claif_cod sends is its own), so it is measured as the request is read and refused at once.
:data:`MAX_SCHEMA_DEPTH` leaves room for the message around the schema (a tool's is 4 levels down).
"""

from __future__ import annotations

from claif_cod.engine.errors import InvalidRequest

MAX_SCHEMA_DEPTH = 100
"""The most levels of objects and arrays a schema may nest (``{}`` is one, ``{"a": []}`` two)."""


def check_schema_depth(schema: object, param: str) -> None:
    """:class:`InvalidRequest` naming ``param`` when ``schema`` nests deeper than :data:`MAX_SCHEMA_DEPTH`."""
    if _deeper_than(schema, MAX_SCHEMA_DEPTH):
        message = (
            f"Invalid '{param}': nested more than {MAX_SCHEMA_DEPTH} levels deep "
            "(objects and arrays within each other), more than Codex reads."
        )
        raise InvalidRequest(message, param=param, code="invalid_value")


def _deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` levels; walked without recursion, and given up as
    soon as the answer is known."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
