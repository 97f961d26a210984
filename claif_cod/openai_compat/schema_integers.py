"""How large an integer a caller's JSON schema may hold: Codex reads integers in 64 bits.

Codex's app-server reads a JSON-RPC message's numbers with serde_json, which holds an integer in 64
bits (``i64`` below 0, ``u64`` above). One beyond them but within 128 bits it refuses, and with it the
whole ``thread/start`` carrying a tool's ``parameters`` (or the ``turn/start`` carrying a
``response_format`` / ``text.format`` schema): the request failed with Codex's words, "Codex rejected
thread/start: Invalid request: invalid type: integer `18446744073709551616` as u128, expected any
value", which name neither the tool nor the parameter. One larger still it reads as a float, so the
model saw another number than the caller sent. OpenAI takes any of them. So such an integer is refused
as the request is read, naming the schema and the number, and saying how to write it.
"""

from __future__ import annotations

from claif_cod.engine.errors import InvalidRequest

SMALLEST = -(2**63)
LARGEST = 2**64 - 1


def check_schema_integers(schema: object, param: str) -> None:
    """:class:`InvalidRequest` naming ``param`` when ``schema`` holds an integer Codex cannot read."""
    integer = _out_of_range(schema)
    if integer is None:
        return
    shown = str(integer) if len(str(integer)) <= 64 else f"{str(integer)[:20]}... ({len(str(integer))} digits)"
    message = f"Invalid '{param}': the integer {shown} is out of the range Codex reads ({SMALLEST} to {LARGEST})"
    try:
        message += f"; write it as a float ({float(integer):.17g}) if one will do."
    except OverflowError:  # (beyond any float, too)
        message += "."
    raise InvalidRequest(message, param=param, code="invalid_value")


def _out_of_range(value: object) -> int | None:
    """The first integer of ``value`` beyond 64 bits, or None; walked without recursion (a schema's
    depth is checked apart)."""
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and not SMALLEST <= item <= LARGEST:
            return item
    return None
