"""Log calls with any keyword reach stdlib logging: LogRecord attribute names are renamed, not fatal."""

from __future__ import annotations

import logging

import pytest

from claif_cod._log import get_logger


def test_reserved_names_do_not_break_logging(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("claif_cod.test_log")
    with caplog.at_level(logging.INFO, logger="claif_cod.test_log"):
        log.info("event.name", thread="t-1", message="m", name="n", args="a", request=7)
    [record] = caplog.records
    assert record.thread_ == "t-1"  # type: ignore[attr-defined]
    assert record.message_ == "m"  # type: ignore[attr-defined]
    assert record.request == 7  # type: ignore[attr-defined]
