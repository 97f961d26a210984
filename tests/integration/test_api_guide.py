"""Every ``python`` example of the API guide runs as written against the real Codex CLI.

The guide is ``docs/python-api.md`` (or, until it is copied there, ``../shared/spec/python-api.md``
from the repository root); it is read, never copied, so it cannot drift from these tests. Each
fenced ``python`` block is one test, run with ``exec`` in a fresh namespace (``__name__`` is
``"api_guide_example"``, so ``if __name__ == '__main__':`` servers stay down) inside a fresh
working directory holding ``project/`` and ``my-project/``, with ``CODEX_HOME`` aimed at the
offline test model, which answers ``Echo: <last user message>``.

What an example prints is checked, and what it only defines (routes, test functions, helpers)
is exercised. Three examples continue "Synchronous Requests" and use its ``client``; they get a
fresh ``CodexClient()`` for it (see ``api_guide.CONTEXT``). The examples of claif_cod's own
features also check what the model received, which Codex thread served it (Codex uses the
thread id as ``prompt_cache_key``) and what settings Codex ran with.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import re
import time
import unittest
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
import tenacity
from api_guide import (
    EXAMPLE_CODEX_HOME,
    GUIDE_CANDIDATES,
    GUIDE_WARNINGS,
    REPO_ROOT,
    Example,
    GuideRunner,
    Run,
    guide_runner,
    load_examples,
    unsupported_here,
)
from api_guide_responses import RESPONSES_CHECKS
from chat_messages import patch_prompt, user

import claif_cod.testing.pytest_plugin as codex_pytest_plugin
from claif_cod import CodexClient
from claif_cod.testing import RecordedRequest

pytestmark = [pytest.mark.timeout(60), GUIDE_WARNINGS]

GUIDE, EXAMPLES = load_examples()
NO_GUIDE = "the API guide is missing: looked for " + " and ".join(str(p) for p in GUIDE_CANDIDATES)

NEEDS_DAEMON = frozenset({"sharing-a-session-between-clients"})
"""Examples that need a running claif-codd: the test starts one of its own before the example runs."""
IN_PROCESS_ONLY = frozenset({"daemon-or-in-process"})
"""Examples that pick their own daemon mode; ``tests/daemon/test_api_guide_via_daemon.py`` skips them."""


@pytest.fixture
def guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[GuideRunner]:
    with guide_runner(tmp_path, monkeypatch, capsys) as runner:
        yield runner


def echo(text: str) -> str:
    return f"Echo: {text}"


def words(text: str) -> int:
    """Completion tokens of a reply: the model sends one delta per word."""
    return len(text.split())


def usage_adds_up(usage: dict[str, object] | object) -> None:
    get = usage.get if isinstance(usage, dict) else lambda key: getattr(usage, key)
    assert get("prompt_tokens") > 0
    assert get("total_tokens") == get("prompt_tokens") + get("completion_tokens")


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def thread_of(request: RecordedRequest) -> str:
    """The Codex thread a model request came from (Codex sends the thread id as the cache key)."""
    key = request.body["prompt_cache_key"]
    assert isinstance(key, str) and key
    return key


def context_text(request: RecordedRequest) -> str:
    """Every text Codex sent, its own ``<environment_context>`` and permission instructions included."""
    return "\n".join(
        part.get("text", "")
        for item in request.body["input"]
        for part in item.get("content") or []
        if isinstance(part, dict)
    )


def mentions_path(text: str, template: str, path: Path) -> bool:
    """``template`` (with ``{}`` for the path) is in ``text``, for ``path`` as given or resolved."""
    return template.format(path) in text or template.format(path.resolve()) in text


def input_words(request: RecordedRequest) -> int:
    """The offline model's ``input_tokens``: the words of every input message (docs/testing.md)."""
    items = request.body["input"]
    assert all(item.get("type") == "message" for item in items), "only messages are counted here"
    return len(context_text(request).split())


def call_pytest_style(test: Callable[..., None], *args: object, **fixtures: object) -> None:
    """Call a guide test function; its ``pytest.skip`` means Codex did not answer, so it fails here."""
    try:
        test(*args, **fixtures)
    except pytest.skip.Exception as skipped:
        pytest.fail(f"{test.__name__} skipped itself, so the request failed: {skipped.msg}")


# --- one check per example, keyed by the example's id ------------------------------------------


def check_basic_usage(run: Run) -> None:
    assert run.stdout == ""
    assert len(run.clients) == 2  # the default client, then the configured one
    client = run["client"]
    assert isinstance(client, CodexClient)
    assert client.api_key == "your-api-key"
    assert client.timeout == 300
    assert client.backend is None  # nothing started: codex_path is only used on the first request
    assert run.server.requests == []


def check_synchronous_requests(run: Run) -> None:
    reply = echo("Write a Python function to sort a list")
    response = run["response"]
    assert response.choices[0].message.content == reply
    assert response.model == "o4-mini"
    assert response.usage.completion_tokens == words(reply)
    usage_adds_up(response.usage)
    assert run.stdout == f"{reply}\nModel used: o4-mini\nUsage: {response.usage}\n"
    assert run.stdout.splitlines()[2].startswith("Usage: CompletionUsage(completion_tokens=")
    [request] = run.server.requests
    assert "You are a helpful coding assistant." in request.developer_texts()


def check_advanced_parameters(run: Run) -> None:
    assert run.stdout == ""
    response = run["response"]
    assert response.choices[0].message.content == echo("Optimize this algorithm")
    assert response.model == "o4"
    [request] = run.server.requests
    assert request.body["model"] == "o4"


def check_streaming_responses(run: Run) -> None:
    reply = echo("Explain neural networks step by step")
    assert run["full_response"] == reply
    assert run.stdout == f"{reply}\n\nFull response received: {len(reply)} characters\n"


def check_multiple_choices(run: Run) -> None:
    reply = echo("Write a function to calculate fibonacci")
    assert len(run["response"].choices) == 3
    assert run.stdout == "".join(f"\nOption {i}:\n{reply}\nFinish reason: stop\n" for i in (1, 2, 3))


def check_message_format(run: Run) -> None:
    assert run.stdout == ""
    messages = run["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    response = run.new_client().chat.completions.create(messages=messages, model="o4-mini")
    # The model saw the whole conversation: two real user messages, so this is turn 2.
    assert response.choices[0].message.content == "[turn 2] " + echo("Add authentication to this class")
    [request] = run.server.requests
    assert request.messages() == [
        ("user", "Create a class for managing user sessions"),
        ("assistant", "Here's a session management class..."),
        ("user", "Add authentication to this class"),
    ]
    assert "You are an expert Python developer focused on clean, efficient code." in request.developer_texts()


def check_multi_turn_conversations(run: Run) -> None:
    replies = [
        echo("Write a class for a todo list"),
        "[turn 2] " + echo("Add a method to mark items as completed"),
        "[turn 3] " + echo("Add unit tests for this class"),
    ]
    assert run.stdout == "".join(f"AI: {reply}\n" for reply in replies)
    assert [m["role"] for m in run["conversation"]] == ["system"] + ["user", "assistant"] * 3
    last = run.server.requests[-1]
    assert last.user_texts() == [
        "Write a class for a todo list",
        "Add a method to mark items as completed",
        "Add unit tests for this class",
    ]
    assert ("assistant", replies[1]) in last.messages()


def check_async_client(run: Run) -> None:
    assert run.stdout == echo("Hello") + "\n"


def check_async_streaming(run: Run) -> None:
    assert run.stdout == echo("Explain async programming")


def check_concurrent_requests(run: Run) -> None:
    languages = ["Python", "JavaScript", "Go", "Rust"]
    assert run.stdout == "".join(f"\n{lang}:\n{echo(f'Write a {lang} hello world')}\n" for lang in languages)
    assert len(run.server.requests) == 4


def check_on_trio(run: Run) -> None:
    assert run.stdout == echo("Name one structured concurrency idea") + "\n" + echo("Explain nurseries")
    assert len(run.server.requests) == 2


def check_exception_types(run: Run) -> None:
    assert run.stdout == ""  # no except branch ran
    assert run["response"].choices[0].message.content == echo("Hello")


def check_retry_logic(run: Run) -> None:
    assert run.stdout == echo("Hello") + "\n"
    # A rate limit is retried (3 attempts), as the example promises; no backoff wait in the test.
    robust_request = run["robust_request"].retry_with(wait=tenacity.wait_none())
    prompt = "Hello [[status:429:rate_limit_exceeded]]"
    with pytest.raises(tenacity.RetryError) as raised:
        robust_request(messages=[{"role": "user", "content": prompt}], model="o4-mini")
    assert isinstance(raised.value.last_attempt.exception(), openai.RateLimitError)
    assert len(run.requests_for("Hello [[status:429:rate_limit_exceeded]]")) == 3
    # Other errors are not retried.
    prompt = "Hello [[status:500]]"
    with pytest.raises(openai.InternalServerError):
        robust_request(messages=[{"role": "user", "content": prompt}], model="o4-mini")
    assert len(run.requests_for(prompt)) == 1


def check_graceful_degradation(run: Run) -> None:
    assert run.stdout == echo("Write a fibonacci function") + "\n"
    # A failing model falls back, through the OpenAIError branch.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        fallback = run["safe_code_generation"]("Write a fibonacci function [[status:500]]")
    assert fallback == "# Code generation unavailable"
    assert printed.getvalue().startswith("AI service unavailable: Error code: 500"), printed.getvalue()


def check_context_management(run: Run) -> None:
    assert run.stdout == echo("Refactor this module") + "\n"
    [request] = run.server.requests
    assert request.body["model"] == "o4"
    assert mentions_path(context_text(request), "<cwd>{}</cwd>", run.workdir / "my-project")


def check_response_processing(run: Run) -> None:
    assert run["response"].choices[0].message.content == echo("Write Python and JavaScript functions")
    assert run["code_blocks"] == []  # the echo holds no code block
    assert run.stdout == ""
    reply = "Here:\n```python\ndef f():\n    return 1\n```\nand\n```javascript\nconst f = () => 1;\n```"
    response = run.new_client().chat.completions.create(
        messages=[{"role": "user", "content": f"[[reply:{reply}]]"}], model="o4-mini"
    )
    assert response.choices[0].message.content == reply
    assert run["extract_code_blocks"](response) == [
        {"language": "python", "code": "def f():\n    return 1"},
        {"language": "javascript", "code": "const f = () => 1;"},
    ]


def check_custom_response_processing(run: Run) -> None:
    prompts = run["prompts"]
    results = run["results"]
    assert len(results) == 3
    expected_stdout = ""
    for i, (prompt, result) in enumerate(zip(prompts, results, strict=True)):
        reply = echo(prompt)
        assert result["content"] == reply
        assert result["model"] == "o4-mini"  # the client's default model: the calls pass none
        assert result["finish_reason"] == "stop"
        assert result["completion_tokens"] == words(reply)
        assert result["total_tokens"] == result["prompt_tokens"] + result["completion_tokens"]
        usage_adds_up(result["usage"])
        expected_stdout += f"Prompt {i + 1}:\nTokens used: {result['total_tokens']}\nContent: {reply[:100]}...\n\n"
    assert run.stdout == expected_stdout
    assert [r.body["model"] for r in run.server.requests] == ["o4-mini"] * 3


def check_flask_integration(run: Run) -> None:
    assert run.stdout == ""
    http = run["app"].test_client()
    answer = http.post("/generate", json={"prompt": "Hello from Flask"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["success"] is True
    assert body["content"] == echo("Hello from Flask")
    assert body["usage"]["completion_tokens"] == words(echo("Hello from Flask"))
    usage_adds_up(body["usage"])
    answer = http.post("/generate", json={"prompt": "Hello again", "model": "o4"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert run.requests_for("Hello again")[-1].body["model"] == "o4"
    answer = http.post("/generate", json={"prompt": "Hello [[status:500]]"})
    assert answer.status_code == 500
    assert answer.get_json()["success"] is False
    assert "500" in answer.get_json()["error"]


def check_fastapi_integration(run: Run) -> None:
    from fastapi.testclient import TestClient

    assert run.stdout == ""
    with TestClient(run["app"]) as http:
        answer = http.post("/generate", json={"prompt": "Hello from FastAPI"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["content"] == echo("Hello from FastAPI")
        assert body["model"] == "o4-mini"
        usage_adds_up(body["usage"])
        answer = http.get("/models")
        assert answer.status_code == 200, answer.text
        assert {"o4-mini", "o4"} <= set(answer.json()["models"])
        answer = http.post("/generate", json={"prompt": "Hello [[status:500]]"})
        assert answer.status_code == 500
        assert "500" in answer.json()["detail"]


PATCH_TARGET_MISSING = (
    "AttributeError: module 'claif_cod.client' has no attribute 'subprocess'",
    "ModuleNotFoundError: No module named 'claif_cod.client.subprocess'",  # CPython 3.10's mock imports it
)


def check_unit_testing(run: Run) -> None:
    """The guide's mock example cannot work: claif_cod never calls ``subprocess.run``.

    ``docs/testing.md`` says so; this keeps that statement true. Both tests must error at the
    ``patch`` itself, before any client exists, so nothing real is called either.
    """
    assert run.stdout == ""
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(run["TestCodexClient"])
    report = io.StringIO()
    result = unittest.TextTestRunner(stream=report, verbosity=2).run(suite)
    assert result.testsRun == 2
    assert result.failures == [], report.getvalue()
    assert len(result.errors) == 2, report.getvalue()
    for test, traceback in result.errors:
        assert any(missing in traceback for missing in PATCH_TARGET_MISSING), (test, traceback)
    assert run.clients == []
    assert run.server.requests == []


def check_integration_testing(run: Run) -> None:
    assert run.stdout == ""
    call_pytest_style(run["test_health_check"], CodexClient())
    call_pytest_style(run["test_streaming"], CodexClient())
    assert [r.user_texts()[-1] for r in run.server.requests] == ["Hello", "Count to 3"]


# --- claif_cod's own features ------------------------------------------------------------------


def check_named_sessions(run: Run) -> None:
    first, second = "Review the error handling in api.py", "Which of those issues is the most serious?"
    other = "Start a design note for the cache"
    assert run.stdout == f"[turn 2] {echo(second)}\n{echo(other)}\n"
    one, two, three = run.server.requests
    assert thread_of(one) == thread_of(two)  # the session's thread
    assert two.messages() == [("user", first), ("assistant", echo(first)), ("user", second)]
    assert thread_of(three) != thread_of(one)
    assert three.messages() == [("user", other)]
    client = run["client"]
    # The client's session went on where it was; what else a request carries is not sent again.
    resent = [{"role": "system", "content": "NOT-SENT-AGAIN"}, user(first), assistant("edited"), user("And next?")]
    reply = client.chat.completions.create(model="o4-mini", messages=resent)
    assert reply.choices[0].message.content == "[turn 3] " + echo("And next?")
    last = run.server.requests[-1]
    assert thread_of(last) == thread_of(one)
    assert last.user_texts() == [first, second, "And next?"]
    assert "NOT-SENT-AGAIN" not in context_text(last) and "edited" not in context_text(last)
    # So did the per-call session.
    reply = client.chat.completions.create(
        model="o4-mini", messages=[user("Add a section")], extra_body={"session_id": "design-notes"}
    )
    assert reply.choices[0].message.content == "[turn 2] " + echo("Add a section")
    assert thread_of(run.server.requests[-1]) == thread_of(three)
    with pytest.raises(openai.BadRequestError, match="named session"):
        client.chat.completions.create(
            model="o4-mini", messages=[user("Two answers")], n=2, extra_body={"session_id": "design-notes"}
        )
    with pytest.raises(openai.BadRequestError, match="named session"):
        client.chat.completions.create(model="o4-mini", messages=[user("Two answers")], n=2)


def check_sharing_a_session_between_clients(run: Run) -> None:
    note, question = "Note: I fixed the login timeout bug", "What did I fix today?"
    assert run.stdout == f"[turn 2] {echo(question)}\n"
    one, two = run.server.requests
    assert thread_of(one) == thread_of(two)
    assert two.messages() == [("user", note), ("assistant", echo(note)), ("user", question)]
    for name in ("writer", "reader"):
        backend = run[name].backend
        assert backend is not None and backend.daemon is not None and backend.local is None, name


REVIEW_QUESTIONS = [
    "Review: for i in range(len(xs)): print(xs[i])",
    "Rewrite it the idiomatic way",
    "Now add type hints",
]


def check_continuing_a_conversation_without_a_session(run: Run) -> None:
    replies = [
        echo(REVIEW_QUESTIONS[0]),
        "[turn 2] " + echo(REVIEW_QUESTIONS[1]),
        "[turn 3] " + echo(REVIEW_QUESTIONS[2]),
    ]
    assert run.stdout == "".join(f"{reply}\n" for reply in replies)
    requests = run.server.requests
    assert len(requests) == 3
    assert len({thread_of(r) for r in requests}) == 1  # one warm Codex thread
    for k, request in enumerate(requests, 1):
        assert request.user_texts() == REVIEW_QUESTIONS[:k]  # each message reached the model once
    assert "You are a concise Python reviewer." in requests[-1].developer_texts()
    # An edited history starts a new thread, with the history injected as separate messages.
    edited = [*run["messages"][:4], assistant("Looks fine."), user("Are you sure?")]
    reply = run["client"].chat.completions.create(model="o4-mini", messages=edited)
    assert reply.choices[0].message.content == "[turn 3] " + echo("Are you sure?")
    last = run.server.requests[-1]
    assert thread_of(last) != thread_of(requests[0])
    assert last.messages() == [
        ("user", REVIEW_QUESTIONS[0]),
        ("assistant", replies[0]),
        ("user", REVIEW_QUESTIONS[1]),
        ("assistant", "Looks fine."),
        ("user", "Are you sure?"),
    ]


def check_approving_commands(run: Run) -> None:
    assert run.stdout == echo("Create an empty CHANGELOG.md") + "\n"  # the echo model ran no command
    (run.workdir / "old.log").write_text("keep me")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the handler prints each question
        accepted = run["client"].chat.completions.create(
            model="o4-mini", messages=[user("[[tool:touch CHANGELOG.md]] go")]
        )
        declined = run["client"].chat.completions.create(model="o4-mini", messages=[user("[[tool:rm old.log]] go")])
        run["client"].chat.completions.create(
            model="o4-mini", messages=[user(patch_prompt("*** Add File: notes.txt", "+a note"))]
        )
    asked = printed.getvalue().splitlines()
    assert len(asked) == 5, asked
    assert asked[0].startswith("Codex asks to run ") and "touch CHANGELOG.md" in asked[0], asked
    assert asked[0].endswith((f" in {run.workdir}", f" in {run.workdir.resolve()}")), asked
    assert "rm old.log" in asked[1], asked
    assert asked[2:] == [f"Codex would add {run.workdir.resolve() / 'notes.txt'}:", "a note", ""], asked
    assert not (run.workdir / "notes.txt").exists()  # file changes are declined
    assert (run.workdir / "CHANGELOG.md").exists()
    assert (run.workdir / "old.log").read_text() == "keep me"
    assert "Process exited with code 0" in (accepted.choices[0].message.content or "")
    assert "rejected" in (declined.choices[0].message.content or "")


def check_working_directory_sandbox_and_codex_home(run: Run) -> None:
    assert run.stdout == echo("Which files are in this project?") + "\n"
    [request] = run.server.requests
    context = context_text(request)
    assert mentions_path(context, "<cwd>{}</cwd>", run.workdir / "project")
    # Codex's own permission instructions state the sandbox and the approval policy it runs with.
    assert "`sandbox_mode` is `workspace-write`" in context
    assert "Approval policy is currently never" in context
    # Codex lists the skills of the CODEX_HOME it runs with: the example's, not $CODEX_HOME.
    assert mentions_path(context, "{}/skills/", run.workdir / EXAMPLE_CODEX_HOME)
    assert os.environ["CODEX_HOME"] + "/" not in context


def check_daemon_or_in_process(run: Run) -> None:
    lines = run.stdout.splitlines()
    assert lines[:2] == ["None", "in-process: True / daemon: False"]
    socket = os.environ["CLAIF_COD_SOCKET"]
    assert len(lines) == 3 and lines[2].startswith(f"No daemon: no claif-codd answers at {socket}"), lines
    remote = run["remote"]
    assert remote.daemon_mode == "require" and remote.backend.local is None  # "require" never falls back
    assert len(run.server.requests) == 1  # only the in-process client reached the model
    # CLAIF_COD_DAEMON is the mode of clients that do not choose one (the runner set "off").
    assert run.new_client().daemon_mode == "off"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLAIF_COD_DAEMON", "require")
        client = run.new_client()
    assert client.daemon_mode == "require"
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="o4-mini", messages=[user("Hello")])
    assert len(run.server.requests) == 1


def check_strict_mode_and_reported_parameters(run: Run) -> None:
    reply = echo("Name a sorting algorithm")
    rejected = "strict mode: Codex cannot honour temperature (see docs/parameters.md)"
    assert run.stdout == f"Ignored: max_tokens,temperature\n{reply}\nRejected: temperature - {rejected}\n"
    assert len(run.server.requests) == 1  # the strict client never reached Codex
    # Strict for one call; parameters that never change the answer pass even in strict mode.
    with pytest.raises(openai.BadRequestError) as info:
        run["client"].chat.completions.create(
            model="o4-mini", messages=[user("Hi")], seed=7, extra_body={"strict": True}
        )
    assert info.value.param == "seed"
    raw = run["strict"].chat.completions.with_raw_response.create(
        model="o4-mini", messages=[user("Hi")], user="user-42", metadata={"team": "docs"}, store=False
    )
    assert "x-claif-cod-ignored-params" not in raw.headers
    assert raw.parse().choices[0].message.content == echo("Hi")


def check_structured_output(run: Run) -> None:
    assert run.stdout == ""  # the __main__ block did not run
    assert run.server.requests == []
    verdict = {"verdict": "request_changes", "issues": ["retries are disabled"]}
    assert run["review"](f"- retries = 3\n+ retries = 0\n[[reply:{json.dumps(verdict)}]]") == verdict
    [request] = run.server.requests
    text_format = request.body["text"]["format"]
    assert text_format["type"] == "json_schema"
    assert text_format["schema"]["properties"] == run["REVIEW"]["properties"]
    raw = run["client"].chat.completions.with_raw_response.create(
        model="o4-mini", messages=[user("Hi")], response_format={"type": "json_object"}
    )
    assert raw.headers["x-claif-cod-ignored-params"] == "response_format.json_object"
    assert "format" not in run.server.requests[-1].body.get("text", {})  # no output schema went to Codex


def check_stop_sequences(run: Run) -> None:
    prompt = "Write a commit message, then END, then notes"
    cut = "Echo: Write a commit message, then "
    assert run.stdout == f"{cut!r}\nstop\n"
    [first] = run.server.requests
    # The cut reply is not what the thread holds: sent back, it starts a new thread.
    again = run["client"].chat.completions.create(
        model="o4-mini", messages=[user(prompt), assistant(cut), user("Shorter, please")]
    )
    assert again.choices[0].message.content == "[turn 2] " + echo("Shorter, please")
    assert thread_of(run.server.requests[-1]) != thread_of(first)
    stream = run["client"].chat.completions.create(
        model="o4-mini", messages=[user("[[reply:alpha beta ENDING gamma]]")], stop="END", stream=True
    )
    chunks = [chunk.choices[0] for chunk in stream if chunk.choices]
    assert "".join(c.delta.content or "" for c in chunks) == "alpha beta "
    assert chunks[-1].finish_reason == "stop"


def check_usage_when_streaming(run: Run) -> None:
    reply = echo("Explain recursion in one sentence")
    [request] = run.server.requests
    assert run.stdout == f"{reply}\n[{input_words(request)} prompt + {words(reply)} completion tokens]\n"


def check_timeouts(run: Run) -> None:
    assert run.stdout == echo("Summarise README.md") + "\n"
    assert run["client"].timeout == 300
    ask = run["ask"]
    started = time.monotonic()
    assert ask("[[stall]] Refactor everything", 1.5) is None
    assert time.monotonic() - started < 15
    assert len(run.requests_for("[[stall]] Refactor everything")) == 1  # not retried
    assert ask("Still there?") == echo("Still there?")


def check_tool_calling(run: Run) -> None:
    assert run.stdout == "Tool get_weather returned: 22 degrees and sunny in Paris\n"
    first, second = run.server.requests
    assert "get_weather" in first.tool_names()
    [call] = second.function_calls()
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert [o.output for o in second.function_outputs()] == ["22 degrees and sunny in Paris"]
    assert thread_of(first) == thread_of(second)  # the same Codex turn went on


def check_only_your_tools(run: Run) -> None:
    assert run.stdout == 'lookup_order {"order_id": "42"}\n'
    [request] = run.server.requests
    assert request.tool_names() == ["lookup_order"]


KIT_TESTS = [
    "test_the_prompt_reaches_the_model",
    "test_rate_limits_raise_openais_error",
    "test_with_a_model_server_of_your_own",
]
"""In the order the example defines them, which is the order they run in."""


def check_testing_your_code_offline(run: Run) -> None:
    """Run the example's tests with the fixtures pytest would give them (from claif_cod's plugin)."""
    import codex_cli_bin

    assert run.stdout == ""
    assert run.server.requests == []
    tests = {name: value for name, value in run.namespace.items() if name.startswith("test_")}
    assert list(tests) == KIT_TESTS
    tmp = run.workdir.parent / "kit-tmp"
    tmp.mkdir()
    fixtures = {
        # The runner already is what codex_model_server and codex_home set up: a running
        # ModelServer, and $CODEX_HOME aimed at it for the length of the test.
        "codex_model_server": run.server,
        "codex_home": Path(os.environ["CODEX_HOME"]),
        "codex_binary": Path(os.environ.get("CLAIF_COD_CODEX_PATH") or codex_cli_bin.bundled_codex_path()),
        "tmp_path": tmp,
    }
    for name in KIT_TESTS:
        wanted = list(inspect.signature(tests[name]).parameters)
        for fixture in wanted:
            assert fixture == "tmp_path" or hasattr(codex_pytest_plugin, fixture), f"{name} needs {fixture}"
        call_pytest_style(tests[name], **{fixture: fixtures[fixture] for fixture in wanted})
    # The first two reached the runner's model; the third brought a server of its own.
    assert [r.user_texts()[-1] for r in run.server.requests] == [
        "Status? [[reply:All green.]]",
        "Hi [[status:429:rate_limit_exceeded]]",
    ]


CHECKS: dict[str, Callable[[Run], None]] = {
    "basic-usage": check_basic_usage,
    "synchronous-requests": check_synchronous_requests,
    "advanced-parameters": check_advanced_parameters,
    "streaming-responses": check_streaming_responses,
    "multiple-choices": check_multiple_choices,
    "message-format": check_message_format,
    "multi-turn-conversations": check_multi_turn_conversations,
    "async-client": check_async_client,
    "async-streaming": check_async_streaming,
    "concurrent-requests": check_concurrent_requests,
    "on-trio": check_on_trio,
    "exception-types": check_exception_types,
    "retry-logic": check_retry_logic,
    "graceful-degradation": check_graceful_degradation,
    "context-management": check_context_management,
    "response-processing": check_response_processing,
    "custom-response-processing": check_custom_response_processing,
    "flask-integration": check_flask_integration,
    "fastapi-integration": check_fastapi_integration,
    "unit-testing": check_unit_testing,
    "integration-testing": check_integration_testing,
    "named-sessions": check_named_sessions,
    "sharing-a-session-between-clients": check_sharing_a_session_between_clients,
    "continuing-a-conversation-without-a-session": check_continuing_a_conversation_without_a_session,
    "approving-commands": check_approving_commands,
    "working-directory-sandbox-and-codex-home": check_working_directory_sandbox_and_codex_home,
    "daemon-or-in-process": check_daemon_or_in_process,
    "strict-mode-and-reported-parameters": check_strict_mode_and_reported_parameters,
    "structured-output": check_structured_output,
    "stop-sequences": check_stop_sequences,
    "usage-when-streaming": check_usage_when_streaming,
    "timeouts": check_timeouts,
    "tool-calling": check_tool_calling,
    "only-your-tools": check_only_your_tools,
    "testing-your-code-offline": check_testing_your_code_offline,
    **RESPONSES_CHECKS,
}


# --- the tests ---------------------------------------------------------------------------------

_PARAMS = [pytest.param(e, id=e.id) for e in EXAMPLES] or [
    pytest.param(None, id="no-guide", marks=pytest.mark.skip(reason=NO_GUIDE))
]


@pytest.mark.codex
@pytest.mark.parametrize("example", _PARAMS)
def test_example_runs_as_written(example: Example, guide: GuideRunner) -> None:
    if (reason := unsupported_here(example.id)) is not None:
        pytest.skip(reason)
    if example.id in NEEDS_DAEMON:
        guide.start_daemon()
    run = guide.run(example)
    check = CHECKS.get(example.id)
    if check is not None:
        check(run)


def test_every_example_is_checked() -> None:
    """A new example needs a check of what it prints or defines; a renamed heading needs its check moved."""
    if GUIDE is None:
        pytest.skip(NO_GUIDE)
    ids = [e.id for e in EXAMPLES]
    assert ids, f"{GUIDE} holds no python example"
    assert sorted(set(ids) - CHECKS.keys()) == [], "examples without a check"
    assert sorted(CHECKS.keys() - set(ids)) == [], f"checks for examples no longer in {GUIDE}"


def test_docs_guide_keeps_every_example_of_the_spec() -> None:
    """docs/python-api.md is what the tests above run; it must carry the spec's examples verbatim."""
    spec = REPO_ROOT.parent / "shared" / "spec" / "python-api.md"
    docs = REPO_ROOT / "docs" / "python-api.md"
    if not spec.exists():
        pytest.skip(f"{spec} is not beside this checkout")
    fence = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
    ours = docs.read_text()
    missing = [block for block in fence.findall(spec.read_text()) if block not in ours]
    assert missing == []
