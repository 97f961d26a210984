"""What the ``claif-codd`` commands share: the ``--socket`` and ``--idle-timeout`` options, where the
daemon's state lives by default, and how a command fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from claif_cod._seconds_param import PositiveSeconds

ENV_STATE_DIR = "CLAIF_COD_STATE_DIR"


def default_state_dir() -> Path:
    explicit = os.environ.get(ENV_STATE_DIR)
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "claif-cod"


IDLE_TIMEOUT = PositiveSeconds()
IDLE_TIMEOUT_HELP = "Exit after this many seconds with no clients and no work (a positive number); default: never."

socket_option = click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help=(
        "Socket path (default: $CLAIF_COD_SOCKET, else $XDG_RUNTIME_DIR/claif-cod/codd.sock when that "
        "directory exists, else $XDG_CACHE_HOME/claif-cod/codd.sock)."
    ),
)


class CliFailure(click.ClickException):
    """Shown as ``claif-codd: error: ...``, the style of ``claif-cod`` (click's own is ``Error: ...``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it a ClassVar, and reads it per instance

    def show(self, file: Any = None) -> None:
        click.echo(f"claif-codd: error: {self.format_message()}", err=True)
