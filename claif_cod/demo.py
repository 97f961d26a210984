"""A streamed multi-turn chat through ``CodexClient``: ``python -m claif_cod.demo``.

By default it runs offline: the testing kit's model server stands in for OpenAI and a
private ``CODEX_HOME`` points the real Codex binary at it.  ``--live`` uses your own Codex
login or ``CODEX_API_KEY`` instead.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import click
from openai.types.chat import ChatCompletionMessageParam

from claif_cod import CodexClient, __version__

QUESTIONS = (
    "Write a Python function that reverses a string.",
    "Now make it handle None.",
    "Add a docstring.",
)


def chat(client: CodexClient, model: str) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "You are a concise coding assistant."}]
    for question in QUESTIONS:
        messages.append({"role": "user", "content": question})
        click.secho(f"\nyou> {question}", fg="cyan")
        started = time.perf_counter()
        first_token: float | None = None
        answer = ""
        stream = client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        click.secho("codex> ", fg="green", nl=False)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first_token = first_token or time.perf_counter()
                answer += chunk.choices[0].delta.content
                click.echo(chunk.choices[0].delta.content, nl=False)
            if chunk.usage is not None:
                usage = chunk.usage
                cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
                ttft = (first_token - started) * 1000 if first_token else float("nan")
                click.secho(
                    f"\n   usage: prompt={usage.prompt_tokens} (cached {cached}) completion={usage.completion_tokens}"
                    f" total={usage.total_tokens} | first token {ttft:.0f} ms,"
                    f" turn {(time.perf_counter() - started) * 1000:.0f} ms",
                    dim=True,
                )
        messages.append({"role": "assistant", "content": answer})


class _Retries(logging.Handler):
    """Codex's retries of the model, on stderr: with no network it waits for it for ever, silently."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "turn.codex_retrying":
            said, details = getattr(record, "said", ""), getattr(record, "details", "")
            click.secho(f"\n   codex: {said} ({details})", dim=True, err=True)


@click.command()
@click.option("--live", is_flag=True, help="Use your Codex login / CODEX_API_KEY instead of the offline model.")
@click.option("--model", default="o4-mini", show_default=True)
def main(live: bool, model: str) -> None:
    click.secho(f"claif_cod {__version__}: streamed multi-turn chat through the real Codex CLI", bold=True)
    with ExitStack() as stack:
        if not live:
            from claif_cod.testing import ModelServer, write_codex_home

            server = stack.enter_context(ModelServer())
            home = write_codex_home(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "codex-home", server.url)
            os.environ["CODEX_HOME"] = str(home)
            click.secho(f"offline model at {server.url} (CODEX_HOME={home})", dim=True)
        else:
            logging.getLogger("claif_cod.engine").addHandler(_Retries(logging.WARNING))
        client = stack.enter_context(CodexClient(model=model))
        chat(client, model)
        click.secho(f"\nmodels: {', '.join(m.id for m in client.models.list())}", dim=True)


if __name__ == "__main__":
    sys.exit(main())
