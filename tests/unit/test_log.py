"""Log calls with any keyword reach stdlib logging: LogRecord attribute names are renamed, not fatal."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

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


def test_a_debug_record_reaches_logging_only_when_debug_is_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropped before structlog's processors run (some debug records are written every turn)."""
    from claif_cod import _log

    ran: list[str] = []
    first, *rest = _log._PROCESSORS
    monkeypatch.setattr(_log, "_PROCESSORS", [lambda *a: ran.append("chain") or first(*a), *rest])
    log = get_logger("claif_cod.test_log_debug").bind(request=3)
    with caplog.at_level(logging.INFO, logger="claif_cod.test_log_debug"):
        log.debug("quiet.event", n=1)
    assert caplog.records == [] and ran == []
    with caplog.at_level(logging.DEBUG, logger="claif_cod.test_log_debug"):
        log.debug("loud.event", n=2)
    [record] = caplog.records
    assert record.n == 2 and record.request == 3 and ran == ["chain"]  # type: ignore[attr-defined]


@contextlib.contextmanager
def daemon_logging(fmt: str) -> Iterator[None]:
    """``claif-codd``'s log configured as ``--log-format fmt``; the root logger as it was afterwards."""
    from claif_codd.cli import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(fmt, "info")
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_the_daemons_log_caps_other_libraries_strings_too(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A library's message may hold a client's string (a request line, a header): it is cut as ours are."""
    from claif_cod._log import MAX_VALUE_CHARS

    with daemon_logging(fmt):
        logging.getLogger("aiohttp.server").warning("bad request line %s", "A" * 5000)
        get_logger("claif_cod.test_log_cap").warning("our.event", value="B" * 5000)
    err = capsys.readouterr().err
    for letter in "AB":
        assert letter * (MAX_VALUE_CHARS // 2) in err and letter * (MAX_VALUE_CHARS + 1) not in err
    assert err.count("chars)") == 2


def test_the_console_log_writes_a_clients_control_characters_as_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    """An HTTP request's path is logged as its client sent it, percent-decoded: an escape sequence in
    it reached the terminal the daemon runs in (a NUL, the log file), and a bidi override or a line
    separator in it reordered or broke the line."""
    with daemon_logging("console"):
        get_logger("claif_cod.test_log_controls").warning(
            "http.request", path="/v1/x\x1b]0;owned\x07\x00\x9b2J", model="gpt\u202eexe.\u2028\U000e0041"
        )
        try:
            raise ValueError("one\n  two\x1b[31m")
        except ValueError:
            get_logger("claif_cod.test_log_controls").exception("our.failure")
    err = capsys.readouterr().err
    assert "/v1/x\\x1b]0;owned\\x07\\x00\\x9b2J" in err, err
    assert "gpt\\u202eexe.\\u2028\\U000e0041" in err, err
    assert "ValueError: one\n  two\\x1b[31m" in err, err  # a traceback keeps its lines
    assert not any(ch in err for ch in "\x1b\x07\x00\x9b\u202e\u2028\U000e0041"), err


class _Terminal:
    """sys.stderr as a terminal: what ``claif-codd serve`` run by hand writes to."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("", True), ("1", False)])
def test_the_console_log_has_colours_on_a_terminal_unless_no_color_is_set(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    """``NO_COLOR=1 claif-codd serve`` on a terminal still wrote its log in colours."""
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with daemon_logging("console"):
        get_logger("claif_cod.test_log_colours").warning("our.event", value="x")
    shown = "".join(terminal.written)
    assert "our.event" in shown
    assert ("\x1b[" in shown) == coloured, repr(shown)
