"""``claif-cod``: Codex from the command line, through ``AsyncCodexClient``.

``query`` streams one answer, ``chat`` holds a multi-turn conversation on a named session,
``models`` and ``sessions`` list what Codex and the daemon know. See ``docs/cli.md``.

The ``claif-cod`` script imports :func:`main` from here; the command itself (``claif_cod.cli.main``,
a fifth of a second to import) is loaded when :func:`main` runs, so that a Ctrl-C pressed while it
loads ends it as one pressed later does (``claif-cod: interrupted``, exit status 130), not with a
traceback of the import it cut short.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claif_cod.cli.main import cli

__all__ = ["cli", "main"]

EXIT_INTERRUPTED = 130
"""As ``claif_cod._cli_group.EXIT_INTERRUPTED``, which may be the import Ctrl-C cut short."""


def main() -> None:
    """Entry point of the ``claif-cod`` script."""
    try:
        from claif_cod.cli.main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("\nclaif-cod: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    run()


def __getattr__(name: str) -> Any:
    """``cli``, the click group, loaded on first use."""
    if name == "cli":
        from claif_cod.cli.main import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
