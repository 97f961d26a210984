"""A daemon whose ``responses.db`` cannot be written (a full disk), through both doors with the real Codex:
each request that needs a write before its turn fails with a 503 naming the file
(``response_registry_unwritable``) and runs no turn; one whose turn ran is answered, and what it could not
write is written once the disk has room, before the daemon stops.

The daemon process gets a ``sitecustomize`` (``PYTHONPATH``) that makes every write statement on
``responses.db``'s connection fail with SQLite's ``database or disk is full`` while a file exists."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from daemon_process import DaemonProcess
from test_responses_doors import Doors

from claif_cod import CodexClient
from claif_cod.testing import ModelServer

pytestmark = pytest.mark.codex

INJECTION = """
import os
import sqlite3

_connect = sqlite3.connect
_FULL = os.environ["CLAIF_COD_TEST_DISK_FULL"]
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _check(sql):
    if os.path.exists(_FULL) and sql.lstrip().split(None, 1)[0].upper() in _WRITES:
        raise sqlite3.OperationalError("database or disk is full")


def _failing_connect(database, *args, **kwargs):
    if not str(database).endswith("responses.db"):
        return _connect(database, *args, **kwargs)
    base = kwargs.get("factory", sqlite3.Connection)

    class Failing(base):
        def execute(self, sql, *rest):
            _check(sql)
            return super().execute(sql, *rest)

        def executemany(self, sql, *rest):
            _check(sql)
            return super().executemany(sql, *rest)

    return _connect(database, *args, **{**kwargs, "factory": Failing})


sqlite3.connect = _failing_connect
"""


class FullDisk:
    def __init__(self, doors: Doors, flag: Path) -> None:
        self.doors = doors
        self.flag = flag

    def fill(self) -> None:
        self.flag.write_text("full")

    def free(self) -> None:
        self.flag.unlink()

    def socket(self) -> CodexClient:
        return CodexClient(daemon="require", model="o4-mini", working_dir=str(self.doors.workdir), max_retries=0)

    def log(self) -> str:
        return self.doors.process.log.read_text(errors="replace")


@pytest.fixture
def full_disk(daemon_env: dict[str, str], tmp_path: Path, workdir: Path) -> Iterator[FullDisk]:
    injected = tmp_path / "injected"
    injected.mkdir()
    (injected / "sitecustomize.py").write_text(INJECTION)
    flag = tmp_path / "disk-full"
    env = {
        **daemon_env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(injected), daemon_env.get("PYTHONPATH")])),
        "CLAIF_COD_TEST_DISK_FULL": str(flag),
    }
    process = DaemonProcess(
        socket=Path(env["CLAIF_COD_SOCKET"]), state_dir=tmp_path / "state", log=tmp_path / "codd.log", env=env
    )
    process.start("--http", "127.0.0.1:0", "--http-working-dir", str(workdir))
    yield FullDisk(Doors(process, workdir), flag)
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


def refused(call: Callable[[], Any], registry: Path) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    assert info.value.status_code == 503, info.value
    body = info.value.body
    assert isinstance(body, dict), body
    error = body.get("error", body)
    assert error["code"] == "response_registry_unwritable", error
    assert f"the response registry {registry} cannot be written (database or disk is full)" in error["message"]


def test_requests_that_cannot_be_recorded_fail_with_a_503_and_run_no_turn(
    full_disk: FullDisk, codex_model_server: ModelServer
) -> None:
    registry = full_disk.doors.process.state_dir / "responses.db"
    http = openai.OpenAI(base_url=str(full_disk.doors.http.base_url), api_key="unused", max_retries=0)
    with full_disk.socket() as client:
        first = client.responses.create(input="one")
        conversation = client.conversations.create()
        client.responses.create(input="in the conversation", conversation=conversation.id)
        turns = len(codex_model_server.requests)
        full_disk.fill()
        refused(lambda: client.responses.create(input="two", previous_response_id=first.id), registry)
        refused(lambda: client.responses.create(input="unstored", store=False), registry)
        refused(lambda: client.responses.create(input="again", conversation=conversation.id), registry)
        refused(lambda: client.responses.create(input="streamed", stream=True), registry)
        refused(lambda: client.conversations.create(), registry)
        refused(lambda: client.conversations.items.create(conversation.id, items=[user("x")]), registry)
        refused(lambda: client.responses.delete(first.id), registry)
        refused(lambda: http.responses.create(model="o4-mini", input="over http"), registry)
        refused(lambda: http.conversations.create(), registry)
        assert len(codex_model_server.requests) == turns  # no turn ran
        assert client.responses.retrieve(first.id).output_text == "Echo: one"  # not deleted
        assert [item.id for item in client.conversations.items.list(conversation.id)] != []
        full_disk.free()
        second = client.responses.create(input="two", previous_response_id=first.id)
        assert second.output_text == "[turn 2] Echo: two"
    log = full_disk.log()
    assert "request.crashed" not in log and "Traceback" not in log


def user(text: str) -> dict[str, str]:
    return {"type": "message", "role": "user", "content": text}


def test_a_response_whose_turn_ran_is_answered_and_written_once_the_disk_has_room(
    full_disk: FullDisk, codex_model_server: ModelServer
) -> None:
    with full_disk.socket() as client:
        conversation = client.conversations.create()
        with client.responses.create(
            input="[[long:6]] [[slow:200]] go", conversation=conversation.id, stream=True
        ) as stream:
            events = iter(stream)
            first = next(events)  # the turn is under way, its response recorded in progress
            full_disk.fill()
            rest = list(events)
        assert first.type == "response.created"
        done = rest[-1]
        assert done.type == "response.completed" and done.response.output_text == "w1 w2 w3 w4 w5 w6"
        answer = done.response
        # while the disk is full, the daemon answers from what it kept in memory
        assert client.responses.retrieve(answer.id).status == "completed"
        listed = [item.id for item in client.conversations.items.list(conversation.id, order="asc")]
        assert len(listed) == 2 and listed[1] == answer.output[0].id
        assert "is kept in memory until a write succeeds" in full_disk.log()
        full_disk.free()
        client.conversations.create()  # the next write that succeeds writes what was kept first
    log = full_disk.log()
    assert "request.crashed" not in log and "Traceback" not in log
    process = full_disk.doors.process
    assert process.stop() == 0
    process.start()
    with full_disk.socket() as client:
        assert client.responses.retrieve(answer.id).output_text == "w1 w2 w3 w4 w5 w6"
        assert [item.id for item in client.conversations.items.list(conversation.id, order="asc")] == listed
