"""What of a function tool's ``parameters`` (its JSON schema) reaches the model through Codex.

Codex reads a dynamic tool's ``inputSchema`` into a JSON-schema subset of its own (codex-rs
``JsonSchema``) and offers the model only that subset: ``type``, ``description``, ``enum``
(``const`` becomes a one-value ``enum``), ``properties``, ``required``, ``additionalProperties``,
``items``, ``minItems``, ``anyOf``/``oneOf``/``allOf``, ``$ref`` and ``$defs``/``definitions``.
Every other keyword is dropped: the constraints (``minimum``, ``pattern``, ``maxLength``,
``format``, ``maxItems``...), ``default``, ``examples``, ``prefixItems``, and a ``description`` on a
schema that says nothing else (a value of any type).  OpenAI shows the model the whole schema, so
what Codex drops is reported (``tools.function.parameters.<keyword>``), as any parameter Codex
cannot honour is.  Seen on Codex 0.163 and 0.171 (tests/integration/test_tool_schema.py pins it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_KEPT = frozenset(
    {
        "type",
        "description",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
    }
)
# Keywords that make the description stay: Codex drops it from a schema with none of them.
_SHAPED_BY = frozenset({"type", "enum", "const", "properties", "items", "anyOf", "oneOf", "allOf", "$ref"})
# What names or identifies a schema rather than its values: dropped too, but the model loses nothing
# of what it may pass (pydantic gives every model and field a ``title``: reporting it would name it
# in nearly every request).
_NAMES_ONLY = frozenset({"title", "$schema", "$id", "$comment"})


def dropped_keywords(schema: object) -> set[str]:
    """The keywords of ``schema``, at any depth Codex reads, that the model will not see."""
    return set(_dropped(schema))


def _dropped(schema: object) -> Iterator[str]:
    if not isinstance(schema, dict):
        return
    yield from (key for key in schema if key not in _KEPT and key not in _NAMES_ONLY)
    if "description" in schema and not _SHAPED_BY & schema.keys():
        yield "description"
    for holder in ("properties", "$defs", "definitions"):
        children = schema.get(holder)
        if isinstance(children, dict):
            for child in children.values():
                yield from _dropped(child)
    for key in ("items", "additionalProperties"):
        yield from _dropped(schema.get(key))
    for combiner in ("anyOf", "oneOf", "allOf"):
        branches: Any = schema.get(combiner)
        if isinstance(branches, list):
            for branch in branches:
                yield from _dropped(branch)
