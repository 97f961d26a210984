"""A sync client's ``create()`` goes to the daemon from the caller's own thread once the engine
loop is connected (``transport.direct_daemon``): same answers, openai's own errors and retries,
the daemon told to stop what nobody waits for, nothing left behind."""

from __future__ import annotations

import gc
import signal
import threading
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_messages import user
from daemon_process import DaemonProcess, full_daemon, refusals
from fresh_script import run_script
from waiting import wait_until

from claif_cod import ApprovalRequest, CodexClient, Decision
from claif_cod.testing import ModelServer
from claif_cod.transport import direct_daemon
from claif_cod.transport.backend import IGNORED_HEADER
from claif_cod.transport.daemon_backend import DaemonBackend

pytestmark = pytest.mark.codex


@pytest.fixture
def loop_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many requests the engine loop's daemon connection carried, by endpoint."""
    calls: Counter[str] = Counter()
    for name in ("chat", "responses"):
        original = getattr(DaemonBackend, name)

        async def counted(self: DaemonBackend, body: bytes, options: Any, _name: str = name, _f: Any = original) -> Any:
            calls[_name] += 1
            return await _f(self, body, options)

        monkeypatch.setattr(DaemonBackend, name, counted)
    return calls


def turns_stop(daemon: DaemonProcess) -> None:
    wait_until(lambda: daemon.status().turns_in_flight == 0, "the daemon to stop the abandoned turn")


def test_turns_after_the_first_go_from_the_callers_thread(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str]
) -> None:
    with CodexClient(daemon="require", model="o4-mini") as client:
        first = client.chat.completions.create(messages=[user("one")])
        history = [user("one"), {"role": "assistant", "content": first.choices[0].message.content}]
        second = client.chat.completions.create(messages=[*history, user("two")])
        assert second.choices[0].message.content == "[turn 2] Echo: two"  # the same warm thread
        assert isinstance(second, openai.types.chat.ChatCompletion)
        history += [user("two"), {"role": "assistant", "content": second.choices[0].message.content}]
        stream = client.chat.completions.create(messages=[*history, user("three four")], stream=True, seed=7)
        assert isinstance(stream, openai.Stream)
        assert stream.response.headers[IGNORED_HEADER] == "seed"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "[turn 3] Echo: three four"
        response = client.responses.create(input="five")
        assert response.output_text == "Echo: five"
        events = [event.type for event in client.responses.create(input="six", stream=True)]
        assert events[0] == "response.created" and events[-1] == "response.completed"
        assert loop_calls == {"chat": 1}
        assert daemon.status().connections == 3  # the loop's, one of the caller's, and this status call


def test_a_failed_request_raises_openais_error_and_the_connection_serves_the_next(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str]
) -> None:
    with CodexClient(daemon="require", model="o4-mini", max_retries=0) as client:
        client.chat.completions.create(messages=[user("warm")])
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(messages=[user("hi")], n=0)
        assert info.value.param == "n"
        with pytest.raises(openai.BadRequestError) as unknown:  # the daemon's parse checks what in-process does
            client.responses.create(input="hi", include=["usage"])  # type: ignore[list-item]
        assert (unknown.value.param, unknown.value.code) == ("include[0]", "invalid_value")
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(messages=[user("[[status:429]] hi")], stream=True)
        assert client.chat.completions.create(messages=[user("ok")]).choices[0].message.content == "Echo: ok"
        assert loop_calls == {"chat": 1}
        assert daemon.status().connections == 3


@pytest.mark.parametrize("timeout", [float("inf"), 1e12])
def test_a_timeout_longer_than_a_socket_waits_is_no_timeout(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str], timeout: float
) -> None:
    """It was an OverflowError ("timestamp out of range for platform time_t") from the second request
    on, when they go from the caller's thread: in-process, async and first requests took it."""
    with CodexClient(daemon="require", model="o4-mini", timeout=timeout) as client:
        client.chat.completions.create(messages=[user("warm")])
        assert client.chat.completions.create(messages=[user("one")]).choices[0].message.content == "Echo: one"
        stream = client.chat.completions.create(messages=[user("two")], stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Echo: two"
        assert client.responses.create(input="three", timeout=timeout).output_text == "Echo: three"
        assert loop_calls == {"chat": 1}


def test_a_retried_request_goes_through_the_engine_loop(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str], codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="require", model="o4-mini", max_retries=1) as client:
        client.chat.completions.create(messages=[user("warm")])
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(messages=[user("[[status:500]] hi")])
    assert loop_calls == {"chat": 2}  # the first request, and the retry of the one that failed
    assert [r.user_texts()[-1] for r in codex_model_server.requests[-2:]] == ["[[status:500]] hi"] * 2


def test_a_turn_that_ran_a_command_and_failed_is_not_retried_from_the_callers_thread(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str], codex_model_server: ModelServer
) -> None:
    with CodexClient(daemon="require", model="o4-mini", max_retries=1) as client:
        client.chat.completions.create(messages=[user("warm")])
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(messages=[user("[[tool:echo ran]] [[failed-after-tool]] go")])
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert loop_calls == {"chat": 1}  # the first request only
    assert len(codex_model_server.requests) == 3  # warm, then the command's call and its follow-up


def test_approvals_are_declined_without_a_handler(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str]
) -> None:
    with CodexClient(
        daemon="require", model="o4-mini", approval_policy="untrusted", sandbox_mode="workspace-write"
    ) as client:
        client.chat.completions.create(messages=[user("warm")])
        response = client.chat.completions.create(messages=[user("[[tool:touch declined.txt]] go")])
        assert response.choices[0].message.content
        assert client.chat.completions.create(messages=[user("after")]).choices[0].message.content == "Echo: after"
    assert not (workdir / "declined.txt").exists()
    assert loop_calls == {"chat": 1}


def test_a_retired_approval_value_warns_the_client_through_the_daemon(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str]
) -> None:
    """The daemon maps it as the engine does in-process, and its client gets the same UserWarning:
    each request, whether it goes through the engine loop or the caller's own connection."""
    with (
        CodexClient(daemon="require", model="o4-mini", approval_policy="on-failure") as client,
        warnings.catch_warnings(record=True) as warned,
    ):
        warnings.simplefilter("always")
        client.chat.completions.create(messages=[user("through the engine loop")])
        client.chat.completions.create(messages=[user("from the caller's thread")])
        stream = client.chat.completions.create(messages=[user("streamed")], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Echo: streamed"
        client.responses.create(input="a response")
        client.models.list()
    mapped = [w for w in warned if "approval_policy='on-failure'" in str(w.message)]
    assert [w.category for w in mapped] == [UserWarning] * 5
    assert "using 'on-request' instead" in str(mapped[0].message)
    assert loop_calls == {"chat": 1}  # the first request; models.list goes through the loop too


def test_warning_filters_that_make_it_an_error_leave_a_daemons_request_running(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str]
) -> None:
    """The request runs in the daemon already when its warning comes: it goes on (the warning is logged)."""
    with (
        CodexClient(daemon="require", model="o4-mini", approval_policy="on-failure") as client,
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("error", category=UserWarning)
        for text in ("through the engine loop", "from the caller's thread"):
            assert client.chat.completions.create(messages=[user(text)]).choices[0].message.content == f"Echo: {text}"
        assert [m.id for m in client.models.list()] == ["o4-mini", "o4", "gpt-test-large"]
    assert loop_calls == {"chat": 1}


@pytest.mark.parametrize("answer", ["accept", "raise"])
def test_an_approval_handler_is_run_on_the_engine_loop_for_a_callers_connection(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str], answer: str
) -> None:
    """As for a request through the engine loop: the handler (a coroutine) runs there, and one that
    raises is logged and declined; the request itself stays on the caller's own connection."""
    asked: list[tuple[str, str | None]] = []

    async def handler(request: ApprovalRequest) -> Decision:
        asked.append((threading.current_thread().name, request.command))
        if answer == "raise":
            raise RuntimeError("the handler failed")
        return "accept"

    with CodexClient(
        daemon="require",
        model="o4-mini",
        approval_policy="untrusted",
        sandbox_mode="workspace-write",
        approval_handler=handler,
    ) as client:
        client.chat.completions.create(messages=[user("warm")])
        reply = client.chat.completions.create(messages=[user("[[tool:touch plain.txt]] go")])
        assert (reply.choices[0].message.content or "").startswith("Tool said:")
        stream = client.chat.completions.create(messages=[user("[[tool:touch streamed.txt]] go")], stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text.startswith("Tool said:")
    assert [thread for thread, _ in asked] == ["claif-cod-engine"] * 2
    assert all("touch" in (command or "") for _, command in asked)
    for name in ("plain.txt", "streamed.txt"):
        assert (workdir / name).exists() == (answer == "accept")
    assert loop_calls == {"chat": 1}


def test_ctrl_c_stops_the_turn_in_the_daemon(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer, loop_calls: Counter[str]
) -> None:
    main = threading.main_thread()
    assert main.ident is not None and main.ident == threading.get_ident()
    caller = main.ident
    wchan = Path(f"/proc/self/task/{main.native_id}/wchan")

    def interrupt_once_at_the_model() -> None:
        codex_model_server.wait_for_requests(2, timeout=20)
        # Once the caller is blocked reading its socket: a signal handled just before a thread enters
        # a blocking call does not interrupt that call (CPython checks for it between bytecodes and on
        # EINTR only), as a Ctrl-C landing in that instant waits for the next one.
        # (Reading with a deadline, the request's timeout: it waits in poll() for the socket first.)
        wait_until(
            lambda: wchan.read_text().startswith(("unix_stream_read", "poll_schedule_timeout")),
            "the caller to wait on the daemon",
        )
        signal.pthread_kill(caller, signal.SIGINT)

    with CodexClient(daemon="require", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("warm")])
        interrupter = threading.Thread(target=interrupt_once_at_the_model)
        interrupter.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                client.chat.completions.create(messages=[user("[[stall]] two")])
        finally:
            interrupter.join()
        turns_stop(daemon)
        assert client.chat.completions.create(messages=[user("after")]).choices[0].message.content == "Echo: after"
    assert loop_calls == {"chat": 1}


def test_arguments_found_not_plain_stop_the_turn_sent_for_them(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked once the request is on its way: the daemon stops it before openai's own create() sends
    them; that client's later such arguments are checked first (nothing sent to stop)."""
    stopped: list[int] = []
    stop = direct_daemon.DirectDaemon.stop

    def counted(self: direct_daemon.DirectDaemon, conn: Any, request_id: int) -> None:
        stopped.append(request_id)
        stop(self, conn, request_id)

    monkeypatch.setattr(direct_daemon.DirectDaemon, "stop", counted)
    with CodexClient(daemon="require", model="o4-mini") as client:
        first = client.chat.completions.create(messages=[user("one")])
        history = [user("one"), {"role": "assistant", "content": first.choices[0].message.content}]
        again = client.chat.completions.create(messages=(*history, user("two")))  # a tuple: openai lists it
        assert again.choices[0].message.content == "[turn 2] Echo: two"
        assert len(stopped) == 1
        turns_stop(daemon)
        history += [user("two"), {"role": "assistant", "content": again.choices[0].message.content}]
        third = client.chat.completions.create(messages=(*history, user("three")))
        assert third.choices[0].message.content == "[turn 3] Echo: three"
        assert len(stopped) == 1
    assert codex_model_server.requests[-1].user_texts() == ["one", "two", "three"]


def idle_connections(client: CodexClient) -> list[Any]:
    direct = client._core._direct_connections
    assert direct is not None
    return list(direct.sync._idle)


def test_a_stream_closed_early_stops_its_turn_and_keeps_its_connection(daemon: DaemonProcess, workdir: Path) -> None:
    """The daemon confirms the turn stopped before the connection goes back for the next request."""
    with CodexClient(daemon="require", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("warm")])
        stream = client.chat.completions.create(messages=[user("[[stall-mid]] a b c")], stream=True)
        next(iter(stream))
        stream.close()
        kept = idle_connections(client)
        assert len(kept) == 1
        turns_stop(daemon)
        assert client.chat.completions.create(messages=[user("next")]).choices[0].message.content == "Echo: next"
        assert idle_connections(client) == kept


@pytest.mark.parametrize("read", [True, False])
def test_a_stream_dropped_unclosed_stops_its_turn(daemon: DaemonProcess, workdir: Path, read: bool) -> None:
    with CodexClient(daemon="require", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("warm")])
        stream = client.chat.completions.create(messages=[user("[[stall-mid]] a b c")], stream=True)
        if read:
            next(iter(stream))
        del stream
        gc.collect()
        turns_stop(daemon)
        assert client.chat.completions.create(messages=[user("next")]).choices[0].message.content == "Echo: next"


def test_a_daemon_restarted_between_turns_is_found_again(daemon: DaemonProcess, workdir: Path) -> None:
    with CodexClient(daemon="require", model="o4-mini", max_retries=0) as client:
        for _ in range(2):
            client.chat.completions.create(messages=[user("before")])
        daemon.stop()
        daemon.start()
        replies = [client.chat.completions.create(messages=[user(f"after {i}")]) for i in range(3)]
    assert [r.choices[0].message.content for r in replies] == ["Echo: after 0", "Echo: after 1", "Echo: after 2"]


def test_a_daemon_killed_mid_turn_is_a_connection_error(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    def kill_once_at_the_model() -> None:
        codex_model_server.wait_for_requests(2, timeout=20)
        daemon.kill9()

    with CodexClient(daemon="require", model="o4-mini", max_retries=0) as client:
        client.chat.completions.create(messages=[user("warm")])
        killer = threading.Thread(target=kill_once_at_the_model)
        killer.start()
        try:
            with pytest.raises(openai.APIConnectionError):
                client.chat.completions.create(messages=[user("[[stall]] two")])
        finally:
            killer.join()


def test_closing_the_client_from_another_thread_ends_a_waiting_turn(
    daemon: DaemonProcess, workdir: Path, codex_model_server: ModelServer
) -> None:
    client = CodexClient(daemon="require", model="o4-mini", max_retries=0)
    client.chat.completions.create(messages=[user("warm")])

    def close_once_at_the_model() -> None:
        codex_model_server.wait_for_requests(2, timeout=20)
        client.close()

    closer = threading.Thread(target=close_once_at_the_model)
    closer.start()
    try:  # as openai's request whose connection its client's close cut, and as through the engine loop
        with pytest.raises(openai.APIConnectionError, match="the client was closed while the request ran"):
            client.chat.completions.create(messages=[user("[[stall]] two")])
    finally:
        closer.join()
    turns_stop(daemon)


def test_more_callers_than_connections_go_through_the_engine_loop(
    daemon: DaemonProcess,
    workdir: Path,
    codex_model_server: ModelServer,
    loop_calls: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(direct_daemon, "MAX_CONNECTIONS", 1)
    with CodexClient(daemon="require", model="o4-mini") as client:
        client.chat.completions.create(messages=[user("warm")])
        replies: list[str | None] = []
        waiting = threading.Thread(
            target=lambda: replies.append(
                client.chat.completions.create(messages=[user("[[barrier:2]] one")]).choices[0].message.content
            )
        )
        waiting.start()
        codex_model_server.wait_for_requests(2, timeout=20)
        other = client.chat.completions.create(messages=[user("[[barrier:2]] two")])
        waiting.join()
    assert replies == ["Echo: one"] and other.choices[0].message.content == "Echo: two"
    assert loop_calls == {"chat": 2}


def test_a_refused_caller_connection_is_not_tried_again_at_once(
    daemon: DaemonProcess, workdir: Path, loop_calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_daemon, "REOPEN_AFTER_S", 60.0)
    holder = full_daemon(daemon)
    try:
        with CodexClient(daemon="require", model="o4-mini") as client:
            replies = [client.chat.completions.create(messages=[user(f"turn {i}")]) for i in range(4)]
    finally:
        holder.close()
    assert [r.choices[0].message.content for r in replies] == [f"Echo: turn {i}" for i in range(4)]
    assert loop_calls == {"chat": 4}
    assert refusals(daemon) == 1  # the second request's; the next two did not try again


def test_a_script_that_never_closes_its_client_or_stream_exits_quietly(
    daemon: DaemonProcess, daemon_env: dict[str, str], workdir: Path
) -> None:
    script = """
        from claif_cod import ApprovalRequest, CodexClient, Decision

        client = CodexClient(daemon="require", model="o4-mini")
        client.chat.completions.create(messages=[{"role": "user", "content": "warm"}])
        print(client.chat.completions.create(messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)
        stream = client.chat.completions.create(
            messages=[{"role": "user", "content": "[[stall-mid]] a b c"}], stream=True
        )
        next(iter(stream))
        """
    done = run_script(script, workdir, daemon_env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "Echo: hi\n", "")
    turns_stop(daemon)
