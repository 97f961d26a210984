"""A caller's JSON schema holding an integer beyond 64 bits is refused at once, with a 400 naming it.

Codex reads a JSON-RPC message's integers in 64 bits: one beyond, within 128 bits, made it refuse the
whole ``thread/start`` (or ``turn/start``), and the request failed in Codex's words ("Codex rejected
thread/start: Invalid request: invalid type: integer `18446744073709551616` as u128, expected any
value"), naming neither the tool nor the parameter; a larger one it read as a float. Integers at the
ends of the 64-bit range reach Codex as they are.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from test_schema_depth import SENDERS, chat_format

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex


def bounded(maximum: int) -> dict[str, Any]:
    return {"type": "object", "properties": {"n": {"type": "integer", "maximum": maximum}}}


@pytest.mark.parametrize("param", SENDERS)
@pytest.mark.parametrize("integer", [2**64, -(2**63) - 1, 10**40])
def test_an_integer_codex_cannot_read_is_refused_at_once(
    client: CodexClient, codex_model_server: ModelServer, param: str, integer: int
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        SENDERS[param](client, bounded(integer))
    assert raised.value.param == param
    assert f"the integer {integer} is out of the range Codex reads" in raised.value.message
    assert "write it as a float" in raised.value.message
    assert codex_model_server.requests == []
    assert chat_format(client, {"type": "object"})  # and the client goes on


@pytest.mark.parametrize("param", SENDERS)
def test_integers_at_the_ends_of_64_bits_reach_the_model(
    client: CodexClient, codex_model_server: ModelServer, param: str
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "enum": [2**64 - 1, -(2**63)]}}}
    SENDERS[param](client, schema)
    assert len(codex_model_server.requests) == 1
