"""claif_cod's clients and claif-codd's socket need no aiohttp: openai imports it whenever it is
installed (~0.1 s of every script's start), so it is only the ``http`` extra, for ``serve --http``,
which says so when it is missing.  Here an ``aiohttp`` that fails to import stands first on the
path, as on a machine without it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_process import DaemonProcess
from fresh_script import run_script
from image_host import png_host

pytestmark = pytest.mark.codex

SCRIPT = """
import sys
from claif_cod import CodexClient

def look(text):
    return [{{"role": "user", "content": [
        {{"type": "text", "text": text}}, {{"type": "image_url", "image_url": {{"url": "{image}"}}}},
    ]}}]

for mode in ("off", "require"):
    with CodexClient(daemon=mode, model="o4-mini") as client:
        reply = client.chat.completions.create(messages=look(mode))
        print(reply.choices[0].message.content, client.backend.daemon is not None)
        stream = client.chat.completions.create(messages=look(mode + " streamed"), stream=True)
        print(next(stream).choices[0].delta.content)
        stream.close()
print(sorted(name for name in sys.modules if name.split(".")[0] == "aiohttp"))
"""


@pytest.fixture
def daemon_env(daemon_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The daemon's and the scripts' environment, with the failing ``aiohttp`` first on the path."""
    stub = tmp_path / "no-aiohttp" / "aiohttp"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("no aiohttp here (a stub on PYTHONPATH)")\n')
    path = [str(stub.parent), *filter(None, [daemon_env.get("PYTHONPATH")])]
    return {**daemon_env, "PYTHONPATH": os.pathsep.join(path)}


@pytest.fixture
def image_url() -> Iterator[str]:
    with png_host() as url:
        yield f"{url}/cat.png"


def test_clients_and_the_daemon_run_without_aiohttp(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path, image_url: str
) -> None:
    done = run_script(SCRIPT.format(image=image_url), workdir, daemon_env)
    assert (done.returncode, done.stderr) == (0, "")
    # In-process and through the daemon, each fetching the image itself (a failed fetch is a 400).
    assert done.stdout.splitlines() == ["Echo: off False", "Echo:", "Echo: require True", "Echo:", "[]"]
    assert daemon.stop() == 0


def test_serve_http_without_aiohttp_says_what_to_install(daemon_env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claif_codd", "serve", "--http", "127.0.0.1:0", "--state-dir", str(tmp_path / "s")],
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--http needs aiohttp: install claif_cod with its http extra, 'claif_cod[http]'" in done.stderr
