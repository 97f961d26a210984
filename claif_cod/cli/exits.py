"""Exit codes of ``claif-cod`` and the messages for the failures behind them.

The ends it shares with ``claif-codd`` (Ctrl-C, a reader that left, output that cannot be written)
are in ``claif_cod._cli_group``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # imported where used: by then a failed request has loaded openai
    import openai

EXIT_OK = 0
EXIT_USAGE = 2
"""Bad command line (click's own code for usage errors)."""
EXIT_MODEL = 3
"""Codex or the model answered with an error (``openai.APIStatusError`` and other openai errors)."""
EXIT_CONNECTION = 4
"""Codex could not be reached: no binary, Codex died, or no daemon with ``--daemon require``."""
EXIT_TIMEOUT = 5
"""The turn passed its ``--timeout`` and was interrupted."""
EXIT_NO_SESSION = 7
"""``sessions close`` named a session the daemon does not have (the others named are closed)."""


def exit_code(error: openai.OpenAIError) -> int:
    """The exit code for an error raised by the client (timeouts are connection errors to openai: test first)."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return EXIT_TIMEOUT
    if isinstance(error, openai.APIConnectionError):
        return EXIT_CONNECTION
    return EXIT_MODEL


def describe(error: openai.OpenAIError, timeout: float | None = None) -> str:
    """One line for the terminal: the error class, the HTTP status if any, and the model's own message."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        limit = f" of {timeout:g} s" if timeout is not None else ""
        return f"the request passed its deadline{limit} (--timeout); any turn it had started was interrupted"
    if isinstance(error, openai.APIConnectionError):
        return one_line(f"cannot reach Codex: {error.message}")
    if isinstance(error, openai.APIStatusError):
        body = error.body
        message = body.get("message") if isinstance(body, dict) else None
        return one_line(f"{type(error).__name__} ({error.status_code}): {message or error.message}")
    return one_line(f"{type(error).__name__}: {error}")


def one_line(message: str) -> str:
    """``message`` on one line, its lines joined by `` | ``.

    A message can quote what Codex wrote on stderr as it died (its log lines), or a model's
    multi-line error: on stderr that was one ``claif-cod: error:`` line followed by lines that do not
    say whose they are, and a script reading the last line of stderr got only a fragment.
    """
    lines = [line.strip() for line in message.splitlines()]
    return " | ".join(line for line in lines if line)


class CliFailure(click.ClickException):
    """An error with its own exit code, shown as ``claif-cod: error: ...`` on stderr."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it a ClassVar, and reads it per instance

    def show(self, file: Any = None) -> None:
        click.echo(f"claif-cod: error: {self.format_message()}", err=True)
