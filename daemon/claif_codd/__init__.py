"""claif-codd: the per-user daemon that keeps Codex warm for every client.

The ``claif-codd`` script runs :func:`main`, which loads the command (``claif_codd.cli``) as it runs
(see :mod:`claif_cod._entry`).
"""

from __future__ import annotations

from claif_cod._entry import run_command


def main() -> None:
    """Entry point of the ``claif-codd`` script."""
    run_command("claif_codd.cli", "claif-codd")
