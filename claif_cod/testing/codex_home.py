"""A throwaway ``CODEX_HOME`` that points Codex at the offline test model.

Codex reads its provider, retry knobs and model catalog from ``$CODEX_HOME/config.toml``;
writing one per test keeps tests isolated from the user's real ``~/.codex`` and from the network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PROVIDER = "claif-test"

_MODELS = (
    ("o4-mini", "o4-mini", "Small, fast offline test model."),
    ("o4", "o4", "Offline test model."),
    ("gpt-test-large", "GPT Test Large", "Larger offline test model."),
)
# One entry of `codex debug models --bundled` (Codex 0.163), with the long prompt texts replaced:
# short base instructions keep test requests small and their token counts easy to reason about.
_MODEL_TEMPLATE: dict[str, Any] = {
    "default_reasoning_level": "medium",
    "supported_reasoning_levels": [
        {"effort": "low", "description": "Fast responses with lighter reasoning"},
        {"effort": "medium", "description": "Balances speed and reasoning depth for everyday tasks"},
        {"effort": "high", "description": "Greater reasoning depth for complex problems"},
    ],
    "shell_type": "unified_exec",
    "visibility": "list",
    "supported_in_api": True,
    "availability_nux": None,
    "upgrade": None,
    "model_messages": None,
    "include_skills_usage_instructions": False,
    "include_plugin_usage_instructions": False,
    "include_apps_usage_instructions": False,
    "default_reasoning_summary": "none",
    "support_verbosity": True,
    "default_verbosity": "low",
    "apply_patch_tool_type": "freeform",
    "truncation_policy": {"mode": "tokens", "limit": 10000},
    "context_window": 272000,
    "max_context_window": 272000,
    "effective_context_window_percent": 95,
    "experimental_supported_tools": [],
    "input_modalities": ["text", "image"],
    "base_instructions": "You are an offline test model for claif_cod. Follow the user's instructions.",
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def model_catalog() -> dict[str, Any]:
    """The catalog Codex's ``model/list`` serves: ``o4-mini``, ``o4`` and ``gpt-test-large``."""
    return {
        "models": [
            {"slug": slug, "display_name": name, "description": description, "priority": i, **_MODEL_TEMPLATE}
            for i, (slug, name, description) in enumerate(_MODELS)
        ]
    }


def write_codex_home(
    path: str | Path,
    server_url: str,
    *,
    model: str = "o4-mini",
    env_key: str | None = None,
    request_max_retries: int = 0,
    stream_max_retries: int = 0,
    stream_idle_timeout_ms: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Create ``path`` with a ``config.toml`` using the test provider at ``server_url``.

    ``env_key`` only names the environment variable Codex reads the API key from; no key is
    ever written. ``extra`` is merged into the config last, so it can override anything.
    Retries default to 0 so scripted failures surface at once instead of after back-off.
    """
    home = Path(path)
    home.mkdir(parents=True, exist_ok=True)
    catalog = home / "model_catalog.json"
    catalog.write_text(json.dumps(model_catalog(), indent=1), encoding="utf-8")
    provider: dict[str, Any] = {
        "name": PROVIDER,
        "base_url": server_url,
        "wire_api": "responses",
        "request_max_retries": request_max_retries,
        "stream_max_retries": stream_max_retries,
    }
    if env_key is not None:
        provider["env_key"] = env_key
    if stream_idle_timeout_ms is not None:
        provider["stream_idle_timeout_ms"] = stream_idle_timeout_ms
    config: dict[str, Any] = {
        "model_provider": PROVIDER,
        "model": model,
        "project_doc_max_bytes": 0,
        "model_catalog_json": str(catalog.resolve()),
        "model_providers": {PROVIDER: provider},
    }
    _merge(config, extra or {})
    (home / "config.toml").write_text(to_toml(config), encoding="utf-8")
    return home


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def to_toml(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Serialise str/int/bool/list values and nested dicts (as ``[tables]``) to TOML."""
    lines = [f"[{'.'.join(_key(k) for k in prefix)}]"] if prefix else []
    lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + "\n" if lines else ""
    for key, value in table.items():
        if isinstance(value, dict):
            text += "\n" + to_toml(value, (*prefix, key))
    return text


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def _string(text: str) -> str:
    escaped = "".join(_ESCAPES.get(c, f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text)
    return f'"{escaped}"'
