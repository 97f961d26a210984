"""``from claif_cod import CodexClient`` imports the client on first use; when a dependency fails to
import, the error says why, as an eager import would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _import_client(tmp_path: Path, openai_init: str) -> subprocess.CompletedProcess[str]:
    """``from claif_cod import CodexClient`` in a fresh interpreter whose ``openai`` is ``openai_init``."""
    shim = tmp_path / "shadow" / "openai"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(openai_init)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim.parent), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", "from claif_cod import CodexClient"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def test_an_attribute_error_while_importing_a_dependency_is_named(tmp_path: Path) -> None:
    """As openai 3.0 with aiohttp 3.9 fails: an AttributeError at import, which ``from ... import``
    would report only as "cannot import name 'CodexClient' from 'claif_cod'"."""
    broken = "import types\ntypes.SimpleNamespace().SocketTimeoutError\n"
    out = _import_client(tmp_path, broken)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: claif_cod.CodexClient cannot be imported: importing claif_cod.client failed:")
    assert "'types.SimpleNamespace' object has no attribute 'SocketTimeoutError'" in last
    assert 'openai/__init__.py", line 2' in out.stderr  # the cause's traceback is kept


def test_other_import_errors_pass_through_unchanged(tmp_path: Path) -> None:
    out = _import_client(tmp_path, "raise ImportError('openai is broken here')\n")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == "ImportError: openai is broken here"


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import claif_cod

    assert not hasattr(claif_cod, "NoSuchClient")
