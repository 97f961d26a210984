"""A caller's JSON schema nested deeper than Codex reads is refused at once, with a 400 naming it.

Codex parses each JSON-RPC line with a recursion limit (128 levels, the message around the schema
included) and does not answer a deeper line at all: a tool's ``parameters``, a ``response_format``
or a ``text.format`` schema nested ~125 levels deep made its request wait 30 s for Codex, then fail
as a timeout, which the SDK retries (and waits again). Schemas up to ``MAX_SCHEMA_DEPTH`` levels
reach the model whole.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from claif_cod import CodexClient
from claif_cod.openai_compat.schema_limits import MAX_SCHEMA_DEPTH
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

CODEX_UNREADABLE = 130
"""Levels a schema nests when Codex can no longer read the message carrying it."""


def nested(depth: int) -> dict[str, Any]:
    """An object schema nesting ``depth`` levels: a property that is an array of arrays of ... strings."""
    inner: dict[str, Any] = {"type": "string"}
    for _ in range(depth - 3):
        inner = {"type": "array", "items": inner}
    return {"type": "object", "properties": {"a": inner}}


def chat_tools(client: CodexClient, schema: dict[str, Any]) -> object:
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    return client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}], tools=[tool])  # type: ignore[list-item]


def chat_format(client: CodexClient, schema: dict[str, Any]) -> object:
    return client.chat.completions.create(
        model="o4-mini",
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    )


def responses_tools(client: CodexClient, schema: dict[str, Any]) -> object:
    return client.responses.create(
        model="o4-mini", input="hi", tools=[{"type": "function", "name": "f", "parameters": schema, "strict": False}]
    )


def responses_format(client: CodexClient, schema: dict[str, Any]) -> object:
    return client.responses.create(
        model="o4-mini", input="hi", text={"format": {"type": "json_schema", "name": "s", "schema": schema}}
    )


SENDERS = {
    "tools[0].function.parameters": chat_tools,
    "response_format.json_schema.schema": chat_format,
    "tools[0].parameters": responses_tools,
    "text.format.schema": responses_format,
}


def test_the_nesting_helper_nests_as_it_says() -> None:
    def depth(value: object) -> int:
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        return 0 if children is None else 1 + max(map(depth, children), default=0)

    assert depth(nested(MAX_SCHEMA_DEPTH)) == MAX_SCHEMA_DEPTH


@pytest.mark.parametrize("param", SENDERS)
def test_a_schema_nested_as_deep_as_allowed_reaches_the_model(
    client: CodexClient, codex_model_server: ModelServer, param: str
) -> None:
    SENDERS[param](client, nested(MAX_SCHEMA_DEPTH))
    assert len(codex_model_server.requests) == 1


@pytest.mark.parametrize("param", SENDERS)
def test_a_schema_nested_deeper_than_codex_reads_is_refused_at_once(
    client: CodexClient, codex_model_server: ModelServer, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        SENDERS[param](client.with_options(max_retries=0), nested(CODEX_UNREADABLE))
    assert raised.value.param == param
    assert f"nested more than {MAX_SCHEMA_DEPTH} levels deep" in raised.value.message
    assert codex_model_server.requests == []
    assert chat_format(client, {"type": "object"})  # and the client goes on
