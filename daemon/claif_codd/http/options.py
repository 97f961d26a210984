"""``--http`` and its companion options of ``claif-codd serve``, ``start`` and ``install-systemd``:
declared once, checked before anything starts, passed on to a ``serve`` started elsewhere."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import click

from claif_codd.http.settings import (
    DEFAULT_SSE_KEEPALIVE_S,
    ENV_TOKEN,
    HttpSettings,
    HttpSettingsError,
    parse_listen,
    read_token,
)


class _Seconds(click.FloatRange):
    """A finite number of seconds, 0 or more (``nan`` and ``inf`` would mean nothing here)."""

    def __init__(self) -> None:
        super().__init__(min=0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value} is not a number of seconds", param, ctx)
        return seconds


def http_options(command: Any) -> Any:
    options = [
        click.option(
            "--http",
            metavar="[HOST:]PORT",
            default=None,
            help="Also serve the OpenAI REST API here (a bare port means 127.0.0.1). Off by default.",
        ),
        click.option(
            "--http-token-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help=f"Require this bearer token (a file only you can read); else ${ENV_TOKEN} if set.",
        ),
        click.option(
            "--http-working-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Where Codex runs for HTTP requests without X-Claif-Cod-Working-Dir (default: home).",
        ),
        click.option(
            "--http-strict",
            is_flag=True,
            default=False,
            help="Strict mode for every HTTP request: a parameter Codex cannot honour is a 400, not reported "
            'in a header (a body\'s own "strict" still decides for that request).',
        ),
        click.option(
            "--sse-keepalive",
            type=_Seconds(),
            default=None,
            metavar="SECONDS",
            help=f"An SSE comment every SECONDS a stream is silent, and its headers once its first event is "
            f"that late, so that proxies do not cut a silent turn; 0: never (default: {DEFAULT_SSE_KEEPALIVE_S:g}).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def checked_http_settings(
    listen: str | None,
    token_file: Path | None,
    working_dir: Path | None,
    strict: bool = False,
    sse_keepalive: float | None = None,
) -> HttpSettings | None:
    """``--http`` and its companions, checked before anything starts; None when HTTP is off."""
    if listen is None:
        if token_file is not None or working_dir is not None or strict:
            raise click.UsageError("--http-token-file, --http-working-dir and --http-strict need --http")
        if sse_keepalive is not None:
            raise click.UsageError("--sse-keepalive needs --http")
        return None
    try:
        import aiohttp  # noqa: F401  (the endpoint's server; asked for here, before anything starts)
    except ImportError:
        message = "--http needs aiohttp: install claif_cod with its http extra, 'claif_cod[http]'"
        raise click.UsageError(message) from None
    try:
        host, port = parse_listen(listen)
        settings = HttpSettings(host, port, token=read_token(token_file), strict=strict)
        if sse_keepalive is not None:
            settings = dataclasses.replace(settings, sse_keepalive=sse_keepalive)
        if working_dir is not None:
            settings = dataclasses.replace(settings, working_dir=str(working_dir.resolve()))
        settings.check()
    except HttpSettingsError as exc:
        raise click.UsageError(str(exc)) from None
    return settings


def http_args(
    listen: str | None,
    token_file: Path | None,
    working_dir: Path | None,
    strict: bool = False,
    sse_keepalive: float | None = None,
) -> list[str]:
    """The same options for a ``serve`` started elsewhere (in the background, by systemd): paths made absolute."""
    args = ["--http", listen] if listen is not None else []
    if strict:
        args.append("--http-strict")
    if sse_keepalive is not None:
        args += ["--sse-keepalive", repr(sse_keepalive)]
    for flag, path in (("--http-token-file", token_file), ("--http-working-dir", working_dir)):
        if path is not None:
            args += [flag, str(path.resolve())]
    return args
