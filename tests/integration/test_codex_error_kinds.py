"""Error kinds newer Codex versions report, from a real Codex and the offline model, as openai's errors.

Codex 0.171 names a missing model, policy refusals and missing policy capacity in ``codexErrorInfo``
(0.163 reports most of them as a bare HTTP status or as ``other``): each test says which it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from claif_cod import CodexClient
from claif_cod.engine.discovery import find_codex, probe

pytestmark = pytest.mark.codex


def codex_version() -> tuple[int, ...]:
    return tuple(int(part) for part in probe(find_codex()).version.split(".")[:3])


@pytest.fixture
def client(codex_home: Path, workdir: Path) -> Iterator[CodexClient]:
    with CodexClient(daemon="off", model="o4-mini", max_retries=0) as c:
        yield c


def ask(client: CodexClient, marker: str) -> None:
    client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": f"go {marker}"}])


def dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def needs_codex(version: tuple[int, ...], what: str) -> None:
    if codex_version() < version:
        pytest.skip(f"codex {dotted(codex_version())} does not report {what} (needs {dotted(version)})")


def test_a_missing_model_is_not_found(client: CodexClient) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        ask(client, "[[status:404:model_not_found]]")
    if codex_version() >= (0, 171):
        assert info.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("marker", "code", "since"),
    [
        ("[[status:400:cyber_policy]]", "cyber_policy", (0, 163)),
        ("[[status:400:bio_policy]]", "bio_policy", (0, 171)),
        ("[[status:403:inference_hook_denied]]", "inference_hook_denied", (0, 171)),
        ("[[status:400:misalignment_policy_violation]]", "misalignment_policy_violation", (0, 171)),
    ],
)
def test_a_policy_refusal_is_a_bad_request_that_says_so(
    client: CodexClient, marker: str, code: str, since: tuple[int, ...]
) -> None:
    needs_codex(since, code)
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, marker)
    assert info.value.code == code
    assert "refused by policy" in info.value.message


def test_missing_policy_capacity_is_a_503(client: CodexClient) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        ask(client, "[[status:503:policy_capacity_unavailable]]")
    assert info.value.status_code == 503
    if codex_version() >= (0, 171):
        assert info.value.code == "policy_capacity_unavailable"
