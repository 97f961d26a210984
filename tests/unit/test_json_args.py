"""encoded: arguments as a body, whether they are plain JSON, a re-sent history's decode done once."""

from __future__ import annotations

import math
import os
import select
import signal
import threading
from typing import Any

import msgspec
import pytest

from claif_cod import json_args
from claif_cod.json_args import encoded


def as_json(params: dict[str, Any]) -> bytes | None:
    """The body, when the arguments are plain JSON (what create() sends)."""
    body = encoded(params)
    return body.content if body is not None and body.plain() else None


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """A fresh memo, and every JSON text the check decodes."""
    seen: list[bytes] = []
    decode = msgspec.json.decode

    def spy(data: bytes) -> Any:
        seen.append(bytes(data))
        return decode(data)

    monkeypatch.setattr(json_args, "_decodes", json_args._Decodes(capacity=4, max_bytes=4096))
    monkeypatch.setattr(json_args, "_decode", spy)
    return seen


def turn(history: list[Any], n: int) -> list[Any]:
    return [*history, {"role": "assistant", "content": f"reply {n}"}, {"role": "user", "content": f"ask {n}"}]


def test_a_growing_history_decodes_only_its_new_messages(decoded: list[bytes]) -> None:
    history: list[Any] = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    for n in range(5):
        params = {"model": "m", "messages": history, "stream": True}
        body = as_json(params)
        assert body is not None
        assert msgspec.json.decode(body) == params
        if n:  # the earlier messages were decoded with the earlier request
            assert decoded[-1] == msgspec.json.encode(history[-2:])
        decoded.clear()
        history = turn(history, n)


def test_the_same_history_again_decodes_nothing_of_it(decoded: list[bytes]) -> None:
    params = {"model": "m", "messages": turn([{"role": "user", "content": "hi"}], 0)}
    assert as_json(params) is not None
    decoded.clear()
    assert as_json(params) is not None
    assert decoded == [b'{"model":"m"}']


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h[0].update(content=("a", "b")),  # a tuple encodes as the list it replaced would
        lambda h: h[0].update(content={"x"}),
        lambda h: h.append({"role": "user", "content": math.nan}),
        lambda h: h.append({"role": "user", "content": {1: "int key"}}),
    ],
    ids=["tuple-in-kept-message", "set", "nan-in-new-message", "int-key-in-new-message"],
)
def test_what_json_would_change_is_caught_in_kept_and_new_messages(decoded: list[bytes], change: Any) -> None:
    history: list[Any] = [{"role": "user", "content": ["a", "b"]}, {"role": "assistant", "content": "x"}]
    assert as_json({"messages": history}) is not None
    history = turn(history, 1)
    change(history)
    assert as_json({"messages": history}) is None


def test_a_kept_message_changed_in_place_is_read_anew(decoded: list[bytes]) -> None:
    history: list[Any] = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]
    assert as_json({"messages": history}) is not None
    history[0]["content"] = "changed"
    body = as_json({"messages": turn(history, 1)})
    assert body is not None
    assert msgspec.json.decode(body)["messages"][0]["content"] == "changed"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([1, 12], [1, 123]),  # the last kept value goes on: not more values
        ([1, 2, 3], [1, 2]),  # a shorter history
        ([1, 2, 3], [1, 2, 4, 5]),  # a branch
        ([1, 2], [[1, 2], 3]),
    ],
)
def test_histories_that_do_not_extend_a_kept_one_are_decoded_whole(first: list[Any], second: list[Any]) -> None:
    for history in (first, second, first, second):
        body = as_json({"input": history})
        assert body is not None
        assert msgspec.json.decode(body) == {"input": history}


def test_the_memo_is_bounded(decoded: list[bytes]) -> None:
    memo = json_args._decodes
    for n in range(10):
        assert as_json({"messages": [n, {"text": "x" * 100}]}) is not None
    assert len(memo._kept) == 4
    assert as_json({"messages": [0, "y" * 5000]}) is not None  # more than the memo holds: not kept
    assert all(b"yyy" not in head for head in memo._kept)
    assert memo._bytes == sum(map(len, memo._kept))


def test_a_history_sent_again_stays_kept(decoded: list[bytes]) -> None:
    memo = json_args._decodes
    again = {"messages": ["again", "x"]}
    assert as_json(again) is not None
    for n in range(5):  # more than the memo holds (4)
        assert as_json({"messages": [n, "y"]}) is not None
        decoded.clear()
        assert as_json(again) is not None
        assert decoded == [b"{}"]  # found kept: the most recently used, not the first kept
    assert b'["again","x"' in memo._kept


def test_threads_sharing_the_memo_each_get_their_own_body() -> None:
    failures: list[str] = []

    def converse(tag: int) -> None:
        history: list[Any] = [{"role": "user", "content": f"hi from {tag}"}]
        for n in range(200):
            params = {"model": f"m{tag}", "messages": history}
            body = as_json(params)
            if body is None or msgspec.json.decode(body) != params:
                failures.append(f"{tag}/{n}")
            history = turn(history, n)

    threads = [threading.Thread(target=converse, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_arguments_without_a_history_list_take_one_round_trip() -> None:
    assert as_json({"input": "hi", "model": "m"}) == b'{"input":"hi","model":"m"}'
    assert as_json({"input": "hi", "metadata": {"when": math.inf}}) is None


# The fork is the point; a pytest-xdist worker has a thread of its own, which Python 3.12+ warns of.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_a_memo_of_its_own_even_if_the_parent_held_it() -> None:
    """A thread of the parent inside the memo while another forks must not leave the child's locked."""
    params = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}
    read, write = os.pipe()
    with json_args._decodes._lock:  # as another thread of the parent might hold it at the fork
        pid = os.fork()
        if pid == 0:  # the child
            os.write(write, as_json(params) or b"refused")
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 10)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        assert ready, "the child hung on the lock it inherited"
        assert msgspec.json.decode(os.read(read, 1000)) == params
    finally:
        os.close(read)
        os.waitpid(pid, 0)
