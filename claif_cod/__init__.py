"""claif_cod: the OpenAI Codex CLI as a drop-in ``openai`` client.

The clients are imported on first use: importing ``openai`` takes seconds on a cold disk, and
``claif-cod --version`` or the daemon's command line should not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from claif_cod._version import __version__

if TYPE_CHECKING:
    from claif_cod.client import AsyncCodexClient, CodexClient
    from claif_cod.engine.approvals import ApprovalHandler, ApprovalRequest, Decision, FileChange

_LAZY = {
    "AsyncCodexClient": "claif_cod.client",
    "CodexClient": "claif_cod.client",
    "ApprovalHandler": "claif_cod.engine.approvals",
    "ApprovalRequest": "claif_cod.engine.approvals",
    "Decision": "claif_cod.engine.approvals",
    "FileChange": "claif_cod.engine.approvals",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'claif_cod' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except AttributeError as exc:
        # `from claif_cod import CodexClient` takes an AttributeError from here for a missing name and
        # says only "cannot import name 'CodexClient'", dropping the cause: a dependency broken at import
        # (openai 3.0 with aiohttp 3.9: "module aiohttp has no attribute SocketTimeoutError").
        raise ImportError(f"claif_cod.{name} cannot be imported: importing {module} failed: {exc}") from exc
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "ApprovalHandler",
    "ApprovalRequest",
    "AsyncCodexClient",
    "CodexClient",
    "Decision",
    "FileChange",
    "__version__",
]
