"""Every ``python`` example of the API guide, run as written with ``CLAIF_COD_DAEMON=require``.

Same examples and same checks as ``tests/integration/test_api_guide.py`` (its harness and its
``CHECKS`` are reused, not copied), but every request must go through a real claif-codd process:
the guide runner sets ``CLAIF_COD_DAEMON=off`` while it sets up, and this module's fixture sets it
back to ``require`` once the runner is ready, before any example runs. The daemon is then asked
what it served, and the in-process engine must never have been created.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess

import claif_cod.transport.in_process as in_process_module
from claif_cod.protocol import (
    PROTOCOL_VERSION,
    DaemonStatus,
    DaemonStatusRequest,
    ErrorResponse,
    FrameDecoder,
    HelloParams,
    HelloRequest,
    Response,
    decode,
    decode_result,
    encode,
    encode_frame,
)

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))

from api_guide import GUIDE_WARNINGS, Example, GuideRunner, guide_runner, load_examples, unsupported_here  # noqa: E402
from test_api_guide import CHECKS, IN_PROCESS_ONLY, NO_GUIDE  # noqa: E402

pytestmark = [pytest.mark.codex, pytest.mark.timeout(60), GUIDE_WARNINGS]

GUIDE, EXAMPLES = load_examples()
_OWN_MODE = pytest.mark.skip(reason="the example picks its own daemon mode ('off', and 'require' with no daemon)")
_PARAMS = [pytest.param(e, id=e.id, marks=[_OWN_MODE] if e.id in IN_PROCESS_ONLY else []) for e in EXAMPLES] or [
    pytest.param(None, id="no-guide", marks=pytest.mark.skip(reason=NO_GUIDE))
]


def daemon_status(path: Path) -> DaemonStatus:
    """``daemon.status`` over a plain blocking socket (hello first, and its answer awaited)."""
    decoder = FrameDecoder()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))

        def call(request: HelloRequest | DaemonStatusRequest) -> Response[Any]:
            sock.sendall(encode_frame(encode(request)))
            while True:
                data = sock.recv(65536)
                assert data, "the daemon hung up"
                for body in decoder.feed(data):
                    message = decode(body)
                    assert isinstance(message, (Response, ErrorResponse)) and message.id == request.id, message
                    assert isinstance(message, Response), message
                    return message

        hello = HelloParams(protocol_version=PROTOCOL_VERSION, package_version="test", client_name="guide-check")
        call(HelloRequest(id=1, params=hello))
        return decode_result(call(DaemonStatusRequest(id=2)).result, DaemonStatus)


@pytest.fixture
def local_engines(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every in-process backend a client creates (there must be none when the daemon is required)."""
    created: list[Any] = []
    real = in_process_module.InProcessBackend

    def spy(*args: Any, **kwargs: Any) -> Any:
        backend = real(*args, **kwargs)
        created.append(backend)
        return backend

    monkeypatch.setattr(in_process_module, "InProcessBackend", spy)
    return created


@pytest.fixture
def guide(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[GuideRunner]:
    with guide_runner(tmp_path, monkeypatch, capsys) as runner:
        monkeypatch.setenv("CLAIF_COD_DAEMON", "require")  # the runner set "off"; it is read per client
        yield runner


@pytest.mark.parametrize("example", _PARAMS)
def test_example_runs_through_the_daemon(
    example: Example, guide: GuideRunner, daemon: DaemonProcess, local_engines: list[Any]
) -> None:
    if (reason := unsupported_here(example.id)) is not None:
        pytest.skip(reason)
    run = guide.run(example)
    check = CHECKS.get(example.id)
    if check is not None:
        check(run)

    assert local_engines == [], "a client ran Codex in the test process"
    for client in run.clients:
        assert client.daemon_mode == "require"
        if client.backend is not None:
            assert client.backend.local is None
            assert client.backend.daemon is not None
            assert client.backend.daemon.conn.hello is not None
            assert client.backend.daemon.conn.hello.daemon_pid == daemon.proc.pid  # type: ignore[union-attr]
    status = daemon_status(daemon.socket)
    if run.server.requests:  # the model was asked, so it was the daemon's Codex that asked it
        served = {Path(p.working_dir) for p in status.processes}
        assert served, status
        assert all(d == run.workdir or run.workdir in d.parents for d in served), (served, run.workdir)
    else:
        assert status.processes == []
