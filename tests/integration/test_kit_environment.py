"""The kit's ``codex_home`` fixture, in a developer's environment: behind a proxy, with their own
claif-codd running.  The test's requests reach the test's model server, in this process."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import claif_cod.testing.pytest_plugin as kit
from claif_cod import CodexClient
from claif_cod.testing import ModelServer
from claif_cod.transport.autostart import ENV_AUTOSTART
from claif_cod.transport.select import ENV_DAEMON
from claif_cod.transport.socket_path import ENV_SOCKET

DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture
def developer_daemon(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[socket.socket]:
    """What the developer's shell exports before pytest starts: their daemon's socket (here one that
    accepts and never answers, so that a connection to it shows), `require`, auto-start."""
    path = Path(tmp_path_factory.mktemp("run", numbered=True)) / "codd.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    listener.setblocking(False)
    monkeypatch.setenv(ENV_SOCKET, str(path))
    monkeypatch.setenv(ENV_DAEMON, "require")
    monkeypatch.setenv(ENV_AUTOSTART, "1")
    with listener:
        yield listener


@pytest.fixture
def behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that takes no connections, as the developer's environment names it before pytest starts."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, DEAD_PROXY)
    monkeypatch.setenv("NO_PROXY", "intranet.example")


def test_the_model_server_is_reached_past_a_proxy(
    behind_a_proxy: None, codex_home: Path, codex_model_server: ModelServer, workdir: Path
) -> None:
    with CodexClient(daemon="off", max_retries=0, timeout=30) as client:
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Echo: hi"
    assert os.environ["NO_PROXY"].split(",")[0] == "intranet.example"  # the developer's entries are kept


def test_the_developers_daemon_is_not_used(
    developer_daemon: socket.socket, codex_home: Path, codex_model_server: ModelServer, workdir: Path
) -> None:
    with CodexClient(max_retries=0, timeout=30) as client:  # auto, from the environment's defaults
        reply = client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Echo: hi"
    with pytest.raises(BlockingIOError):  # nothing connected to the developer's socket
        developer_daemon.accept()
    assert ENV_DAEMON not in os.environ and ENV_AUTOSTART not in os.environ


def test_the_kit_names_the_variables_claif_cod_reads() -> None:
    assert (kit.ENV_SOCKET, kit.ENV_DAEMON, kit.ENV_AUTOSTART) == (ENV_SOCKET, ENV_DAEMON, ENV_AUTOSTART)
