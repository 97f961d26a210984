"""Every ``python`` example of the API guide runs as written against the real Codex CLI.

The guide is ``docs/python-api.md`` (or, until it is copied there, ``../shared/spec/python-api.md``
from the repository root); it is read, never copied, so it cannot drift from these tests. Each
fenced ``python`` block is one test, run with ``exec`` in a fresh namespace (``__name__`` is
``"api_guide_example"``, so ``if __name__ == '__main__':`` servers stay down) inside a fresh
working directory holding ``project/`` and ``my-project/``, with ``CODEX_HOME`` aimed at the
offline test model, which answers ``Echo: <last user message>``.

What an example prints is checked, and what it only defines (routes, test functions, helpers)
is exercised. Three examples continue "Synchronous Requests" and use its ``client``; they get a
fresh ``CodexClient()`` for it (see ``api_guide.CONTEXT``).
"""

from __future__ import annotations

import contextlib
import io
import re
import unittest
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
import tenacity
from api_guide import GUIDE_CANDIDATES, REPO_ROOT, Example, GuideRunner, Run, guide_runner, load_examples

from claif_cod import CodexClient

pytestmark = pytest.mark.timeout(60)

GUIDE, EXAMPLES = load_examples()
NO_GUIDE = "the API guide is missing: looked for " + " and ".join(str(p) for p in GUIDE_CANDIDATES)


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


def call_pytest_style(test: Callable[..., None], *args: object) -> None:
    """Call a guide test function; its ``pytest.skip`` means Codex did not answer, so it fails here."""
    try:
        test(*args)
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
    assert last.user_texts() == ["Write a class for a todo list", "Add a method to mark items as completed",
                                 "Add unit tests for this class"]
    assert ("assistant", replies[1]) in last.messages()


def check_async_client(run: Run) -> None:
    assert run.stdout == echo("Hello") + "\n"


def check_async_streaming(run: Run) -> None:
    assert run.stdout == echo("Explain async programming")


def check_concurrent_requests(run: Run) -> None:
    languages = ["Python", "JavaScript", "Go", "Rust"]
    assert run.stdout == "".join(f"\n{lang}:\n{echo(f'Write a {lang} hello world')}\n" for lang in languages)
    assert len(run.server.requests) == 4


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
    project = run.workdir / "my-project"
    context = "\n".join(part.get("text", "") for item in request.body["input"]
                        for part in item.get("content") or [] if isinstance(part, dict))
    assert f"<cwd>{project}</cwd>" in context or f"<cwd>{project.resolve()}</cwd>" in context


def check_response_processing(run: Run) -> None:
    assert run["response"].choices[0].message.content == echo("Write Python and JavaScript functions")
    assert run["code_blocks"] == []  # the echo holds no code block
    assert run.stdout == ""
    reply = "Here:\n```python\ndef f():\n    return 1\n```\nand\n```javascript\nconst f = () => 1;\n```"
    response = run.new_client().chat.completions.create(
        messages=[{"role": "user", "content": f"[[reply:{reply}]]"}], model="o4-mini")
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


PATCH_TARGET_MISSING = "module 'claif_cod.client' has no attribute 'subprocess'"


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
        assert f"AttributeError: {PATCH_TARGET_MISSING}" in traceback, (test, traceback)
    assert run.clients == []
    assert run.server.requests == []


def check_integration_testing(run: Run) -> None:
    assert run.stdout == ""
    call_pytest_style(run["test_health_check"], CodexClient())
    call_pytest_style(run["test_streaming"], CodexClient())
    assert [r.user_texts()[-1] for r in run.server.requests] == ["Hello", "Count to 3"]


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
}


# --- the tests ---------------------------------------------------------------------------------

_PARAMS = [pytest.param(e, id=e.id) for e in EXAMPLES] or [
    pytest.param(None, id="no-guide", marks=pytest.mark.skip(reason=NO_GUIDE))]


@pytest.mark.codex
@pytest.mark.parametrize("example", _PARAMS)
def test_example_runs_as_written(example: Example, guide: GuideRunner) -> None:
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
