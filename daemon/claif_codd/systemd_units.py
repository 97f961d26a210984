"""The packaged systemd user units, as ``claif-codd install-systemd`` writes them."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

UNIT_FILES = ("claif-codd.socket", "claif-codd.service")


def _unit_dir() -> Path:
    """Wheels carry systemd/ as claif_codd/units; a source checkout has it at the top level."""
    packaged = Path(__file__).with_name("units")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "systemd"


def unit_texts(serve_args: list[str] | None = None) -> dict[str, str]:
    """The packaged units, with ExecStart pointing at this installation's interpreter (plus ``serve_args``)."""
    texts = {name: _unit_dir().joinpath(name).read_text() for name in UNIT_FILES}
    exec_start = f"ExecStart={sys.executable} -m claif_codd serve"
    extra = "".join(f" {shlex.quote(arg)}" for arg in serve_args or [])
    texts["claif-codd.service"] = (
        "\n".join(
            exec_start + line.split(" serve", 1)[1] + extra if line.startswith("ExecStart=") else line
            for line in texts["claif-codd.service"].splitlines()
        )
        + "\n"
    )
    return texts
