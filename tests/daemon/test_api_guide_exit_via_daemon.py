"""Every API guide example, run as a script that never closes its clients, exits quietly through claif-codd.

As ``tests/integration/test_api_guide_exit.py``, with a daemon running and ``CLAIF_COD_DAEMON=require``
(examples that pick their own mode keep it): every client talked to the daemon, and the script's
exit must print nothing (no "Task was destroyed ... DaemonConnection._read_loop()") and leave no
process behind. Each example has a daemon and a model server of its own, and the next test's example
runs beside the current one's (``guide_lookahead``).
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from daemon_process import DaemonProcess

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))

from api_guide import Example, load_examples, unsupported_here  # noqa: E402
from guide_exit import Exit, can_reap, ours_in, run_fresh  # noqa: E402
from guide_lookahead import Lookahead, lookahead  # noqa: E402
from test_api_guide import NO_GUIDE  # noqa: E402
from test_api_guide_exit import script_env  # noqa: E402

from claif_cod import CodexClient  # noqa: E402
from claif_cod.testing import ModelServer  # noqa: E402
from claif_cod.transport.loop_thread import LoopThread  # noqa: E402

pytestmark = [pytest.mark.codex, pytest.mark.timeout(150)]

GUIDE, EXAMPLES = load_examples()
_PARAMS = [pytest.param(e, id=e.id) for e in EXAMPLES] or [
    pytest.param(None, id="no-guide", marks=pytest.mark.skip(reason=NO_GUIDE))
]


def run_via_daemon(example: Example, tmp_path: Path, base: dict[str, str]) -> Exit:
    """The example as a script whose clients all talk to a daemon of its own (private socket and state)."""
    assert GUIDE is not None
    tmp_path.mkdir()
    with ModelServer() as server:
        workdir, env = script_env(tmp_path, server, base)
        run_dir = tmp_path / "run"
        run_dir.mkdir(mode=0o700)
        env["CLAIF_COD_SOCKET"] = str(run_dir / "codd.sock")
        env["CLAIF_COD_STATE_DIR"] = str(tmp_path / "state")
        daemon = DaemonProcess(
            socket=run_dir / "codd.sock", state_dir=tmp_path / "state", log=tmp_path / "codd.log", env=env
        )
        daemon.start()
        try:
            result = run_fresh(
                GUIDE,
                example.id,
                cwd=workdir,
                env={**env, "CLAIF_COD_DAEMON": "require"},
                report=tmp_path / "report.json",
            )
        finally:
            daemon.stop()
    return replace(result, left_in_tmp=ours_in(tmp_path / "tmp"))


def runs_here(example: Example) -> bool:
    return unsupported_here(example.id) is None


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lookahead]:
    with lookahead(run_via_daemon, tmp_path_factory.mktemp("guide-exit-daemon"), runs_here) as ahead:
        yield ahead


@pytest.mark.skipif(not can_reap(), reason="finding leftover processes needs Linux's child subreaper")
@pytest.mark.parametrize("example", _PARAMS)
def test_example_exits_quietly_through_the_daemon(
    example: Example, examples: Lookahead, request: pytest.FixtureRequest
) -> None:
    if (reason := unsupported_here(example.id)) is not None:
        pytest.skip(reason)
    result = examples.exit_of(request)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert result.left_running == []
    assert result.left_in_tmp == []


def test_a_dropped_client_closes_its_daemon_connection(daemon: DaemonProcess, codex_home: Path) -> None:
    """Collected without ``close()``: its connection ends and its loop thread with it, while the program runs on."""

    def use() -> LoopThread:
        client = CodexClient(daemon="require")
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
        return client._core.loop

    gc.disable()  # an automatic collection may come at any allocation: the client goes at gc.collect()
    try:
        loop = use()
        assert daemon.status().connections == 2  # the dropped client's, and the status call's own
    finally:
        gc.enable()
    gc.collect()
    loop.join(timeout=30)
    assert not loop.alive
    deadline = time.monotonic() + 10
    while (connections := daemon.status().connections) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)  # the daemon notices the closed socket on its own loop
    assert connections == 1
