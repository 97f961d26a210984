"""What of a function tool's JSON schema reaches the model, and what claif_cod reports as dropped.

Codex offers the model its own subset of a dynamic tool's ``inputSchema`` (docs/parameters.md,
``tools[].function.parameters``); claif_cod reports every keyword outside it.  These tests compare
the schema sent with the one the model received, on whichever Codex runs them
(``CLAIF_COD_TEST_CODEX``), so that a Codex passing on more, or less, fails here.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "description": "kept", "pattern": "^[A-Z]", "minLength": 1, "maxLength": 8},
    "email": {"type": "string", "format": "email", "examples": ["a@b.c"]},
    "count": {"type": "integer", "minimum": 1, "maximum": 9, "default": 1, "multipleOf": 1},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3, "uniqueItems": True},
    "kind": {"enum": ["a", "b"], "description": "kept too"},
    "note": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}], "default": None},
    "anything": {"description": "a value of any type"},
    "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "minItems": 2},
    "where": {"$ref": "#/$defs/Place"},
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Order",
    "properties": PROPERTIES,
    "required": ["name"],
    "additionalProperties": False,
    "$defs": {"Place": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]+$"}}}},
}
DROPPED = {
    "default",
    "description",
    "examples",
    "format",
    "maxItems",
    "maxLength",
    "maximum",
    "minLength",
    "minimum",
    "multipleOf",
    "pattern",
    "prefixItems",
    "uniqueItems",
}


NUMBER = {"n": {"type": "integer", "minimum": 0}}


def missing(sent: Any, seen: Any) -> set[str]:
    """The keywords of ``sent`` absent from ``seen``, at any depth (property names are not keywords)."""
    if not isinstance(sent, dict):
        return set()
    if not isinstance(seen, dict):
        return set(sent)
    gone = {key for key in sent if key not in seen} - {"title"}
    for holder in ("properties", "$defs"):
        for name, child in sent.get(holder, {}).items():
            gone |= missing(child, seen.get(holder, {}).get(name))
    gone |= missing(sent.get("items"), seen.get("items"))
    for index, branch in enumerate(sent.get("anyOf", [])):
        gone |= missing(branch, (seen.get("anyOf") or [None] * (index + 1))[index])
    return gone


def offer(client: CodexClient, schema: dict[str, Any]) -> str | None:
    raw = client.chat.completions.with_raw_response.create(
        model="o4-mini",
        messages=[{"role": "user", "content": "hi"}],
        tools=[{"type": "function", "function": {"name": "place_order", "parameters": schema}}],
    )
    return raw.headers.get("x-claif-cod-ignored-params")


def test_every_keyword_the_model_does_not_see_is_reported(client: CodexClient, codex_model_server: ModelServer) -> None:
    header = offer(client, SCHEMA)

    offered = codex_model_server.requests[0].tool("place_order")
    assert offered is not None
    assert missing(SCHEMA, offered["parameters"]) == DROPPED  # what this Codex drops
    assert header == ",".join(sorted(f"tools.function.parameters.{keyword}" for keyword in DROPPED))


def test_a_schema_codex_passes_on_whole_reports_nothing(client: CodexClient, codex_model_server: ModelServer) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city"}, "days": {"type": "integer"}},
        "required": ["city"],
        "additionalProperties": False,
    }

    assert offer(client, schema) is None
    offered = codex_model_server.requests[0].tool("place_order")
    assert offered is not None and offered["parameters"] == schema


def test_strict_mode_refuses_a_schema_the_model_would_not_see_whole(
    client: CodexClient, codex_model_server: ModelServer
) -> None:
    with pytest.raises(openai.BadRequestError, match=r"tools\.function\.parameters\.minimum"):
        client.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "user", "content": "hi"}],
            tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": NUMBER}}}
            ],
            extra_body={"strict": True},
        )
    assert codex_model_server.requests == []


def test_responses_report_the_same(client: CodexClient, codex_model_server: ModelServer) -> None:
    raw = client.responses.with_raw_response.create(
        model="o4-mini", input="hi", tools=[{"type": "function", "name": "place_order", "parameters": SCHEMA}]
    )

    assert raw.headers["x-claif-cod-ignored-params"] == ",".join(
        sorted(f"tools.function.parameters.{keyword}" for keyword in DROPPED)
    )
    offered = codex_model_server.requests[0].tool("place_order")
    assert offered is not None and missing(SCHEMA, offered["parameters"]) == DROPPED
