"""A client's ``session_id`` that is not a name is refused when the client is made, saying so."""

from __future__ import annotations

from typing import Any

import pytest

from claif_cod import AsyncCodexClient, CodexClient


@pytest.mark.parametrize("cls", [CodexClient, AsyncCodexClient])
@pytest.mark.parametrize("value", [123, b"review", ["review"]])
def test_a_session_id_that_is_not_a_string_is_a_type_error(cls: Any, value: object) -> None:
    with pytest.raises(TypeError, match=f"session_id must be a str .* not {type(value).__name__}"):
        cls(daemon="off", session_id=value)


def test_a_string_session_id_is_taken() -> None:
    with CodexClient(daemon="off", session_id="review") as client:
        assert client._core.options.session_id == "review"
