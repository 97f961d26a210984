"""Choosing the backend: the daemon when it answers, else the engine in this process."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal, cast

from claif_cod.openai_compat.service import RequestOptions
from claif_cod.transport.backend import Backend, InProcessBackend

DaemonMode = Literal["auto", "require", "off"]
ENV_DAEMON = "CLAIF_COD_DAEMON"


def daemon_mode(requested: str | None) -> DaemonMode:
    value = requested or os.environ.get(ENV_DAEMON) or "auto"
    if value not in ("auto", "require", "off"):
        raise ValueError(f"daemon must be 'auto', 'require' or 'off', not {value!r}")
    return cast(DaemonMode, value)


def backend_factory(mode: DaemonMode, options: RequestOptions) -> Callable[[], Backend]:
    def make() -> Backend:
        return InProcessBackend()

    return make
