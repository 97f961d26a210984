"""A handler's answer that is not a decision, in-process: Codex refused it ("approval request
failed") and nothing was logged; it is declined and logged."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_decisions import NOT_DECISIONS, async_client_declines, sync_client_declines


@pytest.mark.parametrize("answer", NOT_DECISIONS)
def test_a_sync_clients_handler_that_answers_no_decision_is_declined(
    codex_home: Path, workdir: Path, answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    sync_client_declines("off", answer, workdir, caplog)


@pytest.mark.parametrize("answer", NOT_DECISIONS)
async def test_an_async_clients_handler_that_answers_no_decision_is_declined(
    codex_home: Path, workdir: Path, answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    await async_client_declines("off", answer, workdir, caplog)
