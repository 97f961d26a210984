"""A turn's image folder left by a process killed mid-turn is removed by the next process's first
turn with images; folders of running processes, and of other PID namespaces, are left alone."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from claif_cod.engine.images import Image, turn_images

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="needs /proc's PID namespace")


def _killed_mid_turn(tmp: Path) -> tuple[int, str]:
    """The PID and image folder of a process that wrote a turn's images, then was SIGKILLed before its turn ended."""
    script = (
        "import asyncio, os, signal\n"
        "from claif_cod.engine.images import Image, turn_images\n"
        f"asyncio.run(turn_images([Image('a', {PNG!r}, 'image/png')]))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "TMPDIR": str(tmp)}) as killed:
        assert killed.wait() == -9
    [left] = [entry.name for entry in tmp.iterdir()]
    return killed.pid, left


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of the test's own, where only its processes' image folders are."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


async def test_the_folder_of_a_process_killed_mid_turn_is_removed_by_the_next_turn_with_images(
    temp_folder: Path,
) -> None:
    namespace = os.stat("/proc/self/ns/pid").st_ino
    pid, left = _killed_mid_turn(temp_folder)
    keep = [
        f"claif-cod-images-{namespace}-{os.getppid()}-running",  # a running process's turn
        f"claif-cod-images-{namespace}-{os.getpid()}-ours",  # this process's own
        f"claif-cod-images-{namespace + 1}-{pid}-other-namespace",  # a PID of another namespace
        "claif-cod-images-unowned",  # made where /proc said nothing
    ]
    for name in keep:
        (temp_folder / name).mkdir()
    try:
        files = await turn_images([Image("b", PNG, "image/png")])
        try:
            names = set(os.listdir(temp_folder))
            assert left not in names
            assert names == {*keep, os.path.basename(files.directory or "")}
        finally:
            files.remove()
    finally:
        for name in keep:
            (temp_folder / name).rmdir()
