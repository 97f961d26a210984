"""What a caller's JSON schema may hold for Codex to read it: how deep it nests, how large its integers are.

Depth: Codex's app-server parses each JSON-RPC line with serde_json's default recursion limit (128
levels, the whole message counted). A deeper line is not answered at all: Codex logs "Failed to
deserialize JSONRPCMessage: recursion limit exceeded" on its stderr and drops it, so the request that
sent it (a ``thread/start`` carrying a tool's ``parameters``, a ``turn/start`` carrying a
``response_format`` or ``text.format`` schema) waited for Codex's answer until its deadline (30 s),
then failed as a timeout, which clients retry, only to wait again. :data:`MAX_SCHEMA_DEPTH` leaves room
for the message around the schema (a tool's is 4 levels down).

Integers: serde_json holds an integer in 64 bits (``i64`` below 0, ``u64`` above). One beyond them but
within 128 bits it refuses, and with it the whole ``thread/start`` or ``turn/start``: the request failed
with Codex's words, "Codex rejected thread/start: Invalid request: invalid type: integer
`18446744073709551616` as u128, expected any value", which name neither the tool nor the parameter.
One larger still it reads as a float, so the model saw another number than the caller sent. OpenAI
takes any of them.

The caller's JSON is what can break either (everything else claif_cod sends is its own), so a schema
is walked once as the request is read, and refused at once, naming the parameter.
"""

from __future__ import annotations

from claif_cod.engine.errors import InvalidRequest

MAX_SCHEMA_DEPTH = 100
"""The most levels of objects and arrays a schema may nest (``{}`` is one, ``{"a": []}`` two)."""
SMALLEST = -(2**63)
LARGEST = 2**64 - 1


class _TooDeep(Exception):
    pass


def check_schema(schema: object, param: str) -> None:
    """:class:`InvalidRequest` naming ``param`` when ``schema`` nests deeper than :data:`MAX_SCHEMA_DEPTH`
    or holds an integer Codex cannot read (the depth is said first, as it is found first or not at all)."""
    try:
        integer = _first_integer_out_of_range(schema, MAX_SCHEMA_DEPTH)
    except _TooDeep:
        message = (
            f"Invalid '{param}': nested more than {MAX_SCHEMA_DEPTH} levels deep "
            "(objects and arrays within each other), more than Codex reads."
        )
        raise InvalidRequest(message, param=param, code="invalid_value") from None
    if integer is None:
        return
    shown = str(integer) if len(str(integer)) <= 64 else f"{str(integer)[:20]}... ({len(str(integer))} digits)"
    message = f"Invalid '{param}': the integer {shown} is out of the range Codex reads ({SMALLEST} to {LARGEST})"
    try:
        message += f"; write it as a float ({float(integer):.17g}) if one will do."
    except OverflowError:  # (beyond any float, too)
        message += "."
    raise InvalidRequest(message, param=param, code="invalid_value")


def _first_integer_out_of_range(value: object, limit: int) -> int | None:
    """The first integer of ``value`` beyond 64 bits, or None; :class:`_TooDeep` as soon as ``value``
    is found to nest more than ``limit`` levels.  Walked without recursion."""
    pending: list[tuple[object, int]] = [(value, 0)]
    found: int | None = None
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            if found is None and isinstance(item, int) and not isinstance(item, bool):
                found = None if SMALLEST <= item <= LARGEST else item
            continue
        if depth + 1 > limit:
            raise _TooDeep
        pending.extend((child, depth + 1) for child in children)
    return found
