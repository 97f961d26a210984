"""Through claif-codd, a model that cannot be reached fails the request as openai's
``APIConnectionError`` once Codex's retries are spent, as in-process
(``integration/test_unreachable_model.py``), not at the request's ``timeout``."""

from __future__ import annotations

import socket
from pathlib import Path

import openai
import pytest
from chat_messages import user
from daemon_process import DaemonProcess

from claif_cod import CodexClient
from claif_cod.testing import write_codex_home

pytestmark = pytest.mark.codex


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_unreachable_model_is_a_connection_error_through_the_daemon(
    daemon: DaemonProcess, codex_home: Path, workdir: Path, stream: bool
) -> None:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        # The daemon's Codex starts with the first request, and reads this then.
        write_codex_home(codex_home, f"http://127.0.0.1:{refusing.getsockname()[1]}/v1")
        with CodexClient(daemon="require", working_dir=workdir) as client:
            with pytest.raises(openai.APIConnectionError) as info:
                client.chat.completions.create(model="o4-mini", messages=[user("hi")], stream=stream, timeout=60)
            assert client.backend is not None and client.backend.local is None  # served by the daemon
    assert not isinstance(info.value, openai.APITimeoutError)
    assert "Connection failed" in info.value.message
