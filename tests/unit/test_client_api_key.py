"""An ``api_key`` holding a control character is refused when the client is made: Codex gets the key
in its environment, which ends it at a NUL (the model's server got ``Bearer sk-a`` for ``"sk-a\\x00b"``),
and sent no ``Authorization`` at all for a key with a line end (one read from a file with
``open(path).read()``), so the server said the key was wrong or missing, and nothing said why."""

from __future__ import annotations

from typing import Any

import pytest

from claif_cod import AsyncCodexClient, CodexClient


@pytest.mark.parametrize("cls", [CodexClient, AsyncCodexClient])
@pytest.mark.parametrize("key", ["sk-test\n", "sk-test\r\n", "sk-a\x00b", "sk-\tx", "sk-\x7f"])
def test_a_key_with_a_control_character_is_refused(cls: Any, key: str) -> None:
    with pytest.raises(
        ValueError, match=r"^api_key holds a control character \(a line end read with it from a file\?\)$"
    ):
        cls(daemon="off", api_key=key)


@pytest.mark.parametrize("key", ["sk-proj-AbC_123-xyz", "sk with space", "sk-ключ"])
def test_other_keys_are_taken_as_they_are(key: str) -> None:
    with CodexClient(daemon="off", api_key=key) as client:
        assert client._core.options.config.api_key == key
