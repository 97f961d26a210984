"""An executable ``codex`` that runs the fake app-server of ``tests/fakes/fake_codex.py`` with this
venv's interpreter (its modes are chosen by ``FAKE_CODEX_*`` environment variables)."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

FAKE_CODEX = Path(__file__).resolve().parent / "fakes" / "fake_codex.py"


def write_fake_codex(directory: Path) -> Path:
    """``directory/bin/codex``, made executable."""
    wrapper = directory / "bin" / "codex"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = {str(FAKE_CODEX)!r}\n"
        f"runpy.run_path({str(FAKE_CODEX)!r}, run_name='__main__')\n"
    )
    wrapper.chmod(0o755)
    return wrapper


async def no_server_requests(method: str, params: msgspec.Raw) -> object:
    """A pool's handler for Codex's own requests where the fake makes none."""
    raise AssertionError(f"unexpected server request {method}")
