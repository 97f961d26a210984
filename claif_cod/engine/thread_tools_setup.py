"""What Codex must be told, thread by thread, so that a thread offers the tools its caller asked for.

A tools-only thread (``builtin_tools=False``) needs fields at ``thread/start`` and a config again at
every fork and resume (Codex does not keep it); a thread with caller tools on a model Codex runs in
code mode needs a config of its own, and may not be given such a model later.  Both depend on the
Codex version a process runs and on its environment, so they are worked out here, per process, and
:mod:`claif_cod.engine.threads` only asks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from claif_cod.engine.appserver import AppServer
from claif_cod.engine.code_mode import CodeMode
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.pool import ProcessPool
from claif_cod.engine.thread_handle import ThreadHandle
from claif_cod.engine.tools import ThreadTools, thread_start_fields
from claif_cod.engine.tools_only import ToolsOnly


class ThreadToolsSetup:
    """Tools-only and code-mode settings for the threads of one engine's processes."""

    def __init__(self, pool: ProcessPool, codex_version: Callable[[str], Awaitable[str]]) -> None:
        self._pool = pool
        self._codex_version = codex_version
        self._tools_only = ToolsOnly()
        self._code_mode = CodeMode(self._tools_only)

    async def _version(self, server: AppServer) -> str:
        """The Codex version ``server`` runs, which its ``initialize`` answer names: after an upgrade
        under a running daemon, a warm process runs the old binary while new ones run the new."""
        return server.version or await self._codex_version(server.codex_path)

    async def start_fields(
        self, server: AppServer, key: ProcessKey, api_key: str | None, tools: ThreadTools, model: str | None
    ) -> dict[str, Any]:
        """``thread/start``'s fields for ``tools`` on ``server`` (InvalidRequest: ``model`` runs in code mode
        where caller tools cannot)."""
        fields = thread_start_fields(tools)
        if tools.builtin and not tools.enabled:
            return fields
        version, env = await self._version(server), self._pool.child_env(key, api_key)
        if not tools.builtin:
            fields |= await self._tools_only.thread_fields(version, key, env)
        else:
            config = await self._code_mode.thread_config(version, key, env)
            if config is not None:
                fields["config"] = config
            if model:
                await self._code_mode.check_model(version, key, env, model)
        return fields

    async def check_model(self, handle: ThreadHandle, model: str | None) -> None:
        """A thread with caller tools may not run ``model`` where Codex runs it in code mode (InvalidRequest):
        a turn may not switch to one, and a thread started without a model may not have got one."""
        if handle.tools.enabled and model:
            version = await self._version(handle.server)
            env = self._pool.child_env(handle.key, handle.api_key)
            await self._code_mode.check_model(version, handle.key, env, model)

    async def reload_config(self, handle: ThreadHandle, server: AppServer) -> dict[str, Any] | None:
        """What a fork or resume of ``handle`` on ``server`` needs to stay tools-only (Codex does not keep it)."""
        if handle.tools.builtin:
            return None
        version = await self._version(server)
        env = self._pool.child_env(handle.key, handle.api_key)
        return await self._tools_only.reload_config(version, handle.key, env)
