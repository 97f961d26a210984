"""``claif-cod``: Codex from the command line, through ``AsyncCodexClient``.

``query`` streams one answer, ``chat`` holds a multi-turn conversation on a named session,
``models`` and ``sessions`` list what Codex and the daemon know. See ``docs/cli.md``.

The ``claif-cod`` script imports :func:`main` from here; the command itself (``claif_cod.cli.main``)
is loaded when :func:`main` runs (see :mod:`claif_cod._entry`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from claif_cod._entry import run_command

if TYPE_CHECKING:
    from claif_cod.cli.main import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Entry point of the ``claif-cod`` script."""
    run_command("claif_cod.cli.main", "claif-cod")


def __getattr__(name: str) -> Any:
    """``cli``, the click group, loaded on first use."""
    if name == "cli":
        from claif_cod.cli.main import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
