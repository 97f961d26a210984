"""A handler's answer that is not a decision, through the daemon: ``approval.respond`` refused it and
the turn waited for the daemon's 120 s deadline (the request timed out first); it is declined at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_decisions import NOT_DECISIONS, async_client_declines, sync_client_declines
from daemon_process import DaemonProcess


@pytest.mark.parametrize("answer", NOT_DECISIONS)
def test_a_sync_clients_handler_that_answers_no_decision_is_declined(
    daemon: DaemonProcess, workdir: Path, answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    sync_client_declines("require", answer, workdir, caplog)


@pytest.mark.parametrize("answer", NOT_DECISIONS)
async def test_an_async_clients_handler_that_answers_no_decision_is_declined(
    daemon: DaemonProcess, workdir: Path, answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    await async_client_declines("require", answer, workdir, caplog)
