"""The Responses API's later additions through both daemon doors: the socket (``CodexClient(daemon="require")``
and raw protocol messages) and ``serve --http`` (the real ``openai`` SDK), with the real Codex binary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from daemon_process import DaemonProcess
from responses_events import TWO_PARTS, check_reasoning_stream

from claif_cod import CodexClient

pytestmark = pytest.mark.codex


class Doors:
    def __init__(self, process: DaemonProcess, workdir: Path) -> None:
        self.process = process
        self.workdir = workdir
        url = process.status().http
        assert url is not None
        self.http = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

    def socket(self) -> CodexClient:
        return CodexClient(daemon="require", model="o4-mini", working_dir=str(self.workdir))


@pytest.fixture
def doors(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[Doors]:
    process = DaemonProcess(
        socket=Path(daemon_env["CLAIF_COD_SOCKET"]), state_dir=tmp_path / "state", log=tmp_path / "codd.log",
        env=daemon_env,
    )  # fmt: skip
    process.start("--http", "127.0.0.1:0", "--http-working-dir", str(workdir))
    yield Doors(process, workdir)
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


def test_reasoning_summaries_stream_through_both_doors(doors: Doors) -> None:
    body = {"model": "o4-mini", "input": "think [[reasoning:2]]", "reasoning": {"summary": "auto"}}
    with doors.socket() as client, client.responses.create(**body, stream=True) as stream:  # type: ignore[call-overload]
        check_reasoning_stream(list(stream), TWO_PARTS)
    with doors.http.responses.create(**body, stream=True) as stream:  # type: ignore[call-overload]
        check_reasoning_stream(list(stream), TWO_PARTS)
