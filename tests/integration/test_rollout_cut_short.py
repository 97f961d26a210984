"""A persisted thread whose rollout was cut short (a full disk, a crash, an edit) is not resumed on
part of its history (in-process engine, real Codex; see engine/rollout_check.py).

Codex 0.163 resumes such a thread without a word, every turn listed (it lists them from its own
database), and rebuilds the model's history from what is left of the rollout: the next turn ran on
a silently shorter history. A named session goes on from the messages its store kept, as when its
rollout is gone; a stored response from its stored chain.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import openai
import pytest
from chat_messages import user
from rollouts import CUTS, cut_short, the_rollout

from claif_cod import CodexClient
from claif_cod.engine.engine import Engine
from claif_cod.testing import ModelServer
from claif_cod.transport.in_process import InProcessBackend

pytestmark = pytest.mark.codex

WHOLE = [
    ("user", "one"),
    ("assistant", "Echo: one"),
    ("user", "two"),
    ("assistant", "[turn 2] Echo: two"),
    ("user", "three"),
    ("assistant", "[turn 3] Echo: three"),
]


def engine_of(client: CodexClient) -> Engine:
    assert client.backend is not None and isinstance(client.backend.local, InProcessBackend)
    return client.backend.local.engine


def unload_every_thread(client: CodexClient) -> None:
    """Every loaded thread idle for two hours as far as a sweep can tell: the sweep unloads each
    (once Codex has closed it, its rollout is whole on disk), as ``thread_idle_timeout`` would."""
    engine = engine_of(client)
    loaded = engine.threads.loaded()
    for handle in loaded:
        handle.last_used -= 7200
    assert client._core.loop.run(engine.threads.idle.sweep()) == len(loaded)


def loaded_in_codex(client: CodexClient) -> list[str]:
    loaded: list[str] = []
    for _key, server, *_ in engine_of(client).processes():
        raw = client._core.loop.run(server.request("thread/loaded/list", {}, msgspec.Raw))
        loaded += msgspec.json.decode(raw)["data"]
    return loaded


def wait_until_codex_holds(client: CodexClient, threads: list[str], timeout: float = 10.0) -> None:
    """Until Codex reports exactly ``threads`` loaded (it unloads an unsubscribed thread at once,
    but after its answer to the unsubscribe)."""
    deadline = time.monotonic() + timeout
    while sorted(loaded_in_codex(client)) != sorted(threads):
        assert time.monotonic() < deadline, f"Codex holds {loaded_in_codex(client)}, not {threads}"
        time.sleep(0.02)


def session_thread(client: CodexClient) -> str:
    [record] = engine_of(client).sessions.all()
    return record.thread_id


@pytest.mark.parametrize("cut", CUTS)
def test_a_session_whose_rollout_was_cut_short_goes_on_with_its_whole_history(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, caplog: pytest.LogCaptureFixture, cut: str
) -> None:
    """Before, the model was sent "one" then "four" (cut after the first turn), or "one", "two" and
    "four" (cut halfway through the second answer), and the caller heard nothing of it."""
    with CodexClient(daemon="off", session_id="notes", model="o4-mini") as client:
        for text in ("one", "two", "three"):
            client.chat.completions.create(messages=[user(text)])
        cut_thread = session_thread(client)
        unload_every_thread(client)
        cut_short(codex_home, cut, then='"text":"[turn 2] Echo: two"')
        reply = client.chat.completions.create(messages=[user("four")])
        assert reply.choices[0].message.content == "[turn 4] Echo: four"
        assert session_thread(client) != cut_thread  # seeded anew from the messages the store kept
        wait_until_codex_holds(client, [session_thread(client)])  # the cut thread is not left loaded
        assert client.chat.completions.create(messages=[user("five")]).choices[0].message.content == (
            "[turn 5] Echo: five"
        )
    assert codex_model_server.requests[-2].messages() == [*WHOLE, ("user", "four")]
    [warning] = [r for r in caplog.records if r.msg == "engine.session_reseeded"]
    assert "shorter than Codex recorded" in warning.error  # type: ignore[attr-defined]


def test_an_intact_rollout_resumes_its_own_thread_and_the_check_leaves_nothing_loaded(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The check (an ephemeral fork) passes, and its fork is let go: Codex holds the session's thread only."""
    with CodexClient(daemon="off", session_id="notes", model="o4-mini") as client:
        for text in ("one", "two", "three"):
            client.chat.completions.create(messages=[user(text)])
        thread = session_thread(client)
        unload_every_thread(client)
        reply = client.chat.completions.create(messages=[user("four")])
        assert reply.choices[0].message.content == "[turn 4] Echo: four"
        assert session_thread(client) == thread
        wait_until_codex_holds(client, [thread])
    assert codex_model_server.requests[-1].messages() == [*WHOLE, ("user", "four")]
    assert not [r for r in caplog.records if r.msg in ("engine.session_reseeded", "engine.rollout_check_refused")]
    assert len(list((codex_home / "sessions").rglob("*.jsonl"))) == 1  # the ephemeral fork wrote none


@pytest.mark.parametrize("damage", [*CUTS, "deleted"])
def test_a_stored_response_whose_rollout_was_cut_short_or_deleted_goes_on_from_its_stored_chain(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer, damage: str
) -> None:
    """Cut short, the chain went on with part of its history, silently; deleted, it was a
    BadRequestError "Codex rejected thread/resume: no rollout found for thread id ...", though the
    store keeps every response of the chain."""
    with CodexClient(daemon="off", model="o4-mini") as client:
        previous = None
        for text in ("one", "two", "three"):
            previous = client.responses.create(input=text, previous_response_id=previous.id if previous else None)
        assert previous is not None
        unload_every_thread(client)
        if damage == "deleted":
            the_rollout(codex_home).unlink()
        else:
            cut_short(codex_home, damage, then='"text":"[turn 2] Echo: two"')
        four = client.responses.create(input="four", previous_response_id=previous.id)
        assert four.output_text == "[turn 4] Echo: four"
        assert codex_model_server.requests[-1].messages() == [*WHOLE, ("user", "four")]
        five = client.responses.create(input="five", previous_response_id=four.id)  # on the new thread
        assert five.output_text == "[turn 5] Echo: five"


def test_a_cut_short_rollout_whose_chain_lost_a_response_is_a_bad_request_saying_what_to_do(
    codex_home: Path, workdir: Path, codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="off", model="o4-mini", max_retries=0) as client:
        one = client.responses.create(input="one")
        two = client.responses.create(input="two", previous_response_id=one.id)
        client.responses.delete(one.id)
        unload_every_thread(client)
        cut_short(codex_home, CUTS[0], then="")
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(input="three", previous_response_id=two.id)
    assert info.value.param == "previous_response_id"
    message = str(info.value)
    assert f"the Codex thread of response '{two.id}' cannot be continued as recorded" in message
    assert "shorter than Codex recorded" in message
    assert "send the whole transcript without previous_response_id" in message
    assert len(codex_model_server.requests) == 2  # nothing reached the model
