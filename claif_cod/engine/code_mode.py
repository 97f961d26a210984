"""Caller tools on models that Codex runs in code mode.

Codex's model catalog puts most of its own models in code mode (``tool_mode: code_mode_only``):
the model is offered only Codex's JavaScript ``exec`` and ``wait`` tools, and every other tool,
the caller's too, only as ``tools.NAME(...)`` inside ``exec``.  A call made that way reaches
claif_cod as an ``item/tool/call`` request but never as a ``function_call`` of a model response,
which is how a turn learns it must suspend (engine/tools.py): the turn would wait forever.
Checked with the offline model server scripting such an ``exec`` call, on 0.163 and 0.171
(tests/integration/test_code_mode_tools.py):

* Codex 0.169 to 0.171 take a model catalog per thread: a thread with caller tools gets a copy of
  Codex's effective catalog without code mode and the lite request format, so every model is
  offered the caller's tools as plain functions (Codex's own tools stay).
* Any other Codex reads its catalog once per process: a turn with caller tools on a model in code
  mode is refused (InvalidRequest naming the model), before it starts.  A Codex whose catalog cannot
  be read (older ones have no ``codex debug models``) is let through with a warning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from claif_cod._log import get_logger
from claif_cod.engine import probe_cache
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.errors import InvalidRequest
from claif_cod.engine.tools_only import CATALOG_RECIPE, Catalog, ToolsOnly, minor_version

log = get_logger("claif_cod.engine.tools")


def catalog_per_thread(version: str) -> bool:
    """Whether this Codex takes ``config.model_catalog_json`` per thread (checked on 0.169 to 0.171)."""
    minor = minor_version(version)
    low, high = CATALOG_RECIPE
    return minor is not None and low <= minor <= high


class CodeMode:
    """Keeps caller tools off code mode: a per-thread catalog where Codex takes one, a refusal elsewhere."""

    def __init__(self, tools_only: ToolsOnly) -> None:
        self._catalogs = tools_only

    async def _catalog(self, key: ProcessKey, env: Mapping[str, str], version: str) -> Catalog:
        try:
            return await self._catalogs.catalog(key, env, version)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"caller tools need Codex's model catalog (to keep them off code mode): {exc.message}", param="tools"
            ) from exc

    async def thread_config(self, version: str, key: ProcessKey, env: Mapping[str, str]) -> dict[str, Any] | None:
        """``config`` for ``thread/start`` of a thread with caller tools (None: this Codex cannot take one)."""
        if not catalog_per_thread(version):
            return None
        data = (await self._catalog(key, env, version)).functions()
        path = probe_cache.store_file(f"catalog-functions-{hashlib.sha256(data).hexdigest()[:32]}.json", data)
        if path is None:
            raise InvalidRequest(
                f"caller tools need a private model catalog file, and {probe_cache.cache_dir()} is not usable",
                param="tools",
            )
        return {"model_catalog_json": str(path)}

    async def check_model(self, version: str, key: ProcessKey, env: Mapping[str, str], model: str) -> None:
        """Refuse a turn with caller tools on ``model`` when this Codex would run it in code mode."""
        if catalog_per_thread(version) or not model:
            return
        try:
            catalog = await self._catalogs.catalog(key, env, version)
        except InvalidRequest:
            # An older Codex without `debug models` predates code mode: nothing to keep the tools from.
            log.warning("engine.code_mode_unknown", codex=version)
            return
        if model in catalog.code_mode_models():
            raise InvalidRequest(
                f"codex {version} runs model {model!r} in code mode, where the model reaches caller tools only "
                "from JavaScript in Codex's exec tool and claif_cod cannot report those calls; use a model "
                "without code mode, or codex 0.169 to 0.171 (see docs/parameters.md, tools)",
                param="model",
            )
