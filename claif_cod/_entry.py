"""The ``claif-cod`` and ``claif-codd`` scripts' entry: the command is imported when the script runs.

A command takes a fifth of a second to import (click, asyncio, our modules). A Ctrl-C pressed
meanwhile is to end it as one pressed later does (``NAME: interrupted``, exit status 130), not with
a traceback of whatever import it cut short and Python's death by SIGINT. So this module imports
nothing heavy, and loads the command itself.
"""

from __future__ import annotations

import importlib
import sys

EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT), as shells report it (128 + 2)."""


def run_command(module: str, name: str) -> None:
    """``module``'s ``main`` (a click command) loaded, then run; ``name`` is the program's."""
    try:
        command = importlib.import_module(module).main
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{name}: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    command()
