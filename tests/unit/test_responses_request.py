"""parse_responses_request: parameters Codex cannot take are reported when well formed, refused when mistyped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from claif_cod.engine.errors import InvalidRequest
from claif_cod.openai_compat.responses_request import ParsedResponses, parse_responses_request

WELL_TYPED: dict[str, Any] = {
    "temperature": 0.2,
    "top_p": 1,
    "top_logprobs": 3,
    "max_output_tokens": 100,
    "max_tool_calls": 2,
    "truncation": "auto",
    "include": ["reasoning.encrypted_content"],
    "service_tier": "auto",
    "prompt_cache_key": "k",
}


def parse(**fields: Any) -> ParsedResponses:
    body = json.dumps({"model": "m", "input": "hi", **fields}).encode()
    return parse_responses_request(body, default_model=None, strict=False)


def test_well_typed_parameters_are_reported() -> None:
    assert parse(**WELL_TYPED).ignored == tuple(sorted(WELL_TYPED))


@pytest.mark.parametrize("param", sorted(WELL_TYPED))
def test_a_null_parameter_is_reported(param: str) -> None:
    assert parse(**{param: None}).ignored == (param,)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("temperature", "hot"),
        ("top_p", False),
        ("max_output_tokens", "100"),
        ("max_tool_calls", 2.5),
        ("truncation", 1),
        ("include", "reasoning.encrypted_content"),
        ("user", 7),
        ("safety_identifier", ["x"]),
    ],
)
def test_a_mistyped_parameter_is_refused_not_reported(param: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(**{param: value})
    assert info.value.param == param
    assert info.value.code == "invalid_type"
