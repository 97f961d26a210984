"""instructor on Codex: ``instructor.from_openai(CodexClient())`` in ``Mode.TOOLS`` (its default for OpenAI)."""

from __future__ import annotations

import pytest
from ecosystem_support import INSTALL_HINT, Requests
from pydantic import BaseModel

from claif_cod import CodexClient

instructor = pytest.importorskip("instructor", reason=f"instructor is not installed ({INSTALL_HINT})")

pytestmark = pytest.mark.codex


class User(BaseModel):
    name: str
    age: int


def test_tools_mode_returns_the_response_model(model: Requests) -> None:
    with CodexClient(daemon="off") as codex:
        client = instructor.from_openai(codex, mode=instructor.Mode.TOOLS)
        user = client.chat.completions.create(
            model="o4-mini",
            response_model=User,
            max_retries=0,
            messages=[{"role": "user", "content": 'Extract [[call:User {"name": "Ada", "age": 36}]]'}],
        )

    assert isinstance(user, User)
    assert (user.name, user.age) == ("Ada", 36)
    offered = model.since()[0].tool("User")
    assert offered is not None
    assert sorted(offered["parameters"]["properties"]) == ["age", "name"]


def test_json_schema_mode_returns_the_response_model(model: Requests) -> None:
    with CodexClient(daemon="off") as codex:
        client = instructor.from_openai(codex, mode=instructor.Mode.JSON_SCHEMA)
        user = client.chat.completions.create(
            model="o4-mini",
            response_model=User,
            max_retries=0,
            messages=[{"role": "user", "content": 'Extract [[reply:{"name": "Ada", "age": 36}]]'}],
        )

    assert isinstance(user, User)
    assert (user.name, user.age) == ("Ada", 36)
    assert sorted(model.since()[0].body["text"]["format"]["schema"]["properties"]) == ["age", "name"]
