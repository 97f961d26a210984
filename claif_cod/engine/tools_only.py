"""Tools-only threads (``builtin_tools=False``): the model is offered the caller's tools and nothing else.

Codex has no switch for this, and what removes each of its own tools changed between releases.
Each recipe was checked against the offline model server, which records the tools every model
request offered (tests/integration/test_tools_only.py); see docs/parameters.md:

* Codex 0.163 and older: ``environments: []`` on ``thread/start`` removes the shell,
  ``apply_patch`` and ``view_image``; the config below removes sub-agents, goals, web search and
  ``request_user_input``.  Such a Codex reads the model catalog once per process, so models that
  run in code mode (catalog ``tool_mode``: every tool, the caller's too, is reachable only through
  JavaScript in Codex's ``exec`` tool) cannot be changed for one thread: a catalog with any such
  model (a thread may switch models per turn) is refused.
* Codex 0.169 to 0.171: ``environments: []`` no longer removes anything.  ``features.shell_tool``
  and ``features.view_image`` remove the shell and the image viewer; ``apply_patch``, code mode and
  a model's experimental tools come from the model catalog, which these versions let
  ``thread/start`` replace for one thread (``config.model_catalog_json``).  The thread gets a
  copy of Codex's effective catalog (``codex debug models``) without them (and on the standard
  request format, not the "lite" one).
* 0.164 to 0.168 (0.166 checked: neither recipe works there) and anything newer than 0.171
  (not checked) are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from claif_cod.engine import probe_cache
from claif_cod.engine.config import ProcessKey
from claif_cod.engine.errors import InvalidRequest

BASE_CONFIG: dict[str, Any] = {
    "features": {"multi_agent": False, "goals": False},
    "web_search": "disabled",
    "tools": {"experimental_request_user_input": {"enabled": False}},
}
"""Per-thread config that removes sub-agents, goals, web search and request_user_input (0.163 to 0.171)."""

CATALOG_FEATURES: dict[str, bool] = {"shell_tool": False, "view_image": False}
"""Added on the catalog recipe: ``exec_command``/``write_stdin`` and ``view_image`` (0.169 to 0.171)."""

CATALOG_FIELDS_REMOVED = ("apply_patch_tool_type", "tool_mode", "use_responses_lite")
"""Model-catalog fields that give a model Codex's ``apply_patch`` and code mode (``exec``/``wait``), and
the "lite" request format (tools in an ``additional_tools`` input item instead of ``tools``; the
standard format is the one claif_cod's tool calls are verified on)."""
CATALOG_FIELDS_CODE_MODE = ("tool_mode", "use_responses_lite")
"""What :meth:`Catalog.functions` removes: code mode and the lite format, the model's tools otherwise kept."""
CATALOG_FIELDS_EMPTIED = ("experimental_supported_tools",)
"""Required model-catalog fields that list per-model extra tools (``list_dir``, ``clock``...)."""

ENVIRONMENTS_RECIPE = ((0, 0), (0, 163))
CATALOG_RECIPE = ((0, 169), (0, 171))
CATALOG_TTL_S = 300.0
"""How long Codex's effective catalog is reused (Codex itself refreshes a remote catalog every 5 minutes)."""
DEBUG_MODELS_TIMEOUT_S = 30.0


def minor_version(version: str) -> tuple[int, int] | None:
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return None
    return major, minor


def recipe(version: str) -> str:
    """``"environments"`` or ``"catalog"``: how this Codex is made tools-only; InvalidRequest when it cannot be."""
    minor = minor_version(version)
    for name, (low, high) in (("environments", ENVIRONMENTS_RECIPE), ("catalog", CATALOG_RECIPE)):
        if minor is not None and low <= minor <= high:
            return name
    raise InvalidRequest(
        f"builtin_tools=false is not supported by codex {version}: claif_cod knows how to offer the model only "
        "the caller's tools on codex 0.163 and older and on 0.169 to 0.171 (see docs/parameters.md)",
        param="builtin_tools",
    )


@dataclass(frozen=True)
class Catalog:
    """Codex's effective model catalog (what ``codex debug models`` prints)."""

    models: tuple[dict[str, Any], ...]
    extra: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> Catalog:
        document = json.loads(text)
        models = document.get("models") if isinstance(document, dict) else None
        if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
            raise ValueError("no 'models' list")
        return cls(tuple(models), {k: v for k, v in document.items() if k != "models"})

    def code_mode_models(self) -> list[str]:
        return [str(m.get("slug")) for m in self.models if m.get("tool_mode")]

    def functions(self) -> bytes:
        """The same catalog without code mode and the lite format: every tool offered as a plain function (JSON)."""
        models = [{k: v for k, v in m.items() if k not in CATALOG_FIELDS_CODE_MODE} for m in self.models]
        return json.dumps({**self.extra, "models": models}, sort_keys=True).encode()

    def tools_only(self) -> bytes:
        """The same catalog without the fields that bring Codex's own tools (JSON)."""
        models = [
            {
                **{k: v for k, v in m.items() if k not in CATALOG_FIELDS_REMOVED},
                **{k: [] for k in CATALOG_FIELDS_EMPTIED},
            }
            for m in self.models
        ]
        return json.dumps({**self.extra, "models": models}, sort_keys=True).encode()


async def read_catalog(codex_path: str, cwd: str, env: Mapping[str, str]) -> Catalog:
    """Run ``codex debug models`` as the thread's Codex process would see things (home, project, key)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            codex_path,
            "debug",
            "models",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
        )
    except OSError as exc:
        raise _unreadable(codex_path, str(exc)) from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DEBUG_MODELS_TIMEOUT_S)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise _unreadable(codex_path, err.decode(errors="replace").strip()[-300:] or f"exit {proc.returncode}")
    try:
        return Catalog.parse(out.decode())
    except ValueError as exc:
        raise _unreadable(codex_path, f"unexpected output ({exc})") from exc


def _unreadable(codex_path: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"builtin_tools=false needs Codex's model catalog, and `{codex_path} debug models` failed: {why}",
        param="builtin_tools",
    )


class ToolsOnly:
    """The ``thread/start`` fields of tools-only threads, with Codex's catalog read once per process key
    and Codex version."""

    def __init__(self) -> None:
        self._catalogs: dict[tuple[ProcessKey, str], tuple[float, Catalog]] = {}

    async def catalog(self, key: ProcessKey, env: Mapping[str, str], version: str) -> Catalog:
        """Codex's effective catalog for a thread of a process of ``key`` running Codex ``version``.
        Kept per version too: a binary upgraded under a running daemon keeps its path, so the key,
        and a catalog the old binary printed (its models, its fields) must not be handed to the new
        one's processes as the whole catalog of their threads."""
        cached = self._catalogs.get((key, version))
        if cached is not None and time.monotonic() - cached[0] < CATALOG_TTL_S:
            return cached[1]
        catalog = await read_catalog(key.codex_path, key.working_dir, env)
        self._catalogs[(key, version)] = (time.monotonic(), catalog)
        return catalog

    async def reload_config(self, version: str, key: ProcessKey, env: Mapping[str, str]) -> dict[str, Any]:
        """The ``config`` a tools-only thread is forked or resumed with: neither keeps the thread's own
        (Codex reverts to its full tool set), and neither takes ``environments``, so on Codex 0.163 and
        older a tools-only thread cannot be branched or resumed (InvalidRequest)."""
        if recipe(version) == "environments":
            raise InvalidRequest(
                f"codex {version} cannot branch or resume a thread with builtin_tools=false and keep its own tools "
                "away from the model (thread/fork and thread/resume take no environments); codex 0.169 to 0.171 can",
                param="builtin_tools",
            )
        config: dict[str, Any] = (await self.thread_fields(version, key, env))["config"]
        return config

    async def thread_fields(self, version: str, key: ProcessKey, env: Mapping[str, str]) -> dict[str, Any]:
        """``environments`` and ``config`` for a tools-only thread on this Codex; InvalidRequest if impossible."""
        how = recipe(version)
        catalog = await self.catalog(key, env, version)
        if how == "environments":
            code_mode = catalog.code_mode_models()
            if code_mode:
                raise InvalidRequest(
                    f"builtin_tools=false is not supported by codex {version} with this model catalog: it offers "
                    f"models in code mode ({', '.join(code_mode[:3])}{', ...' if len(code_mode) > 3 else ''}) "
                    "every tool only through its own exec tool, and cannot be told otherwise per thread "
                    "(codex 0.169 to 0.171 can; see docs/parameters.md)",
                    param="builtin_tools",
                )
            return {"environments": [], "config": BASE_CONFIG}
        data = catalog.tools_only()
        path = probe_cache.store_file(f"catalog-{hashlib.sha256(data).hexdigest()[:32]}.json", data)
        if path is None:
            raise InvalidRequest(
                f"builtin_tools=false needs a private model catalog file, and {probe_cache.cache_dir()} is not usable",
                param="builtin_tools",
            )
        config = {
            **BASE_CONFIG,
            "features": {**BASE_CONFIG["features"], **CATALOG_FEATURES},
            "model_catalog_json": str(path),
        }
        return {"environments": [], "config": config}
