"""``claif-cod``: Codex from the command line, through ``AsyncCodexClient``.

``query`` streams one answer, ``chat`` holds a multi-turn conversation on a named session,
``models`` and ``sessions`` list what Codex and the daemon know. See ``docs/cli.md``.
"""

from claif_cod.cli.main import cli, main

__all__ = ["cli", "main"]
