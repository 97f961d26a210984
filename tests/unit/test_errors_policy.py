"""Codex 0.171's error kinds as OpenAI errors: a missing model, policy refusals, policy capacity."""

from __future__ import annotations

import pytest

from claif_cod.engine.errors import TurnFailed
from claif_cod.openai_compat.errors import translate


def test_model_not_found_is_a_404_with_openais_code() -> None:
    failure = translate(TurnFailed("The model `gpt-9` does not exist", "modelNotFound"))
    assert (failure.kind, failure.status, failure.detail.type, failure.detail.code) == (
        "status",
        404,
        "invalid_request_error",
        "model_not_found",
    )
    assert failure.detail.message == "The model `gpt-9` does not exist"


def test_policy_capacity_is_a_503_to_retry_later() -> None:
    message = "Policy-restricted capacity is unavailable. Please try again later."
    failure = translate(TurnFailed(message, "policyCapacityUnavailable"))
    assert (failure.status, failure.detail.type, failure.detail.code) == (
        503,
        "server_error",
        "policy_capacity_unavailable",
    )
    assert failure.detail.message == message


@pytest.mark.parametrize(
    ("kind", "code", "why"),
    [
        ("cyberPolicy", "cyber_policy", "cybersecurity"),
        ("bioPolicy", "bio_policy", "biological"),
        ("inferenceHookDenied", "inference_hook_denied", "inference hook"),
        ("misalignmentPolicyViolation", "misalignment_policy_violation", "misalignment"),
    ],
)
def test_policy_refusals_are_a_400_that_says_so(kind: str, code: str, why: str) -> None:
    failure = translate(TurnFailed("This request has been flagged.", kind))
    assert (failure.kind, failure.status, failure.detail.type, failure.detail.code) == (
        "status",
        400,
        "invalid_request_error",
        code,
    )
    assert failure.detail.message.startswith("The request was refused by policy (")
    assert why in failure.detail.message
    assert failure.detail.message.endswith(": This request has been flagged.")
