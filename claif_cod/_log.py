"""structlog loggers that hand records to stdlib ``logging``.

A library must stay quiet unless its host configures logging, and must not take over
structlog's global configuration; the daemon attaches its own JSON or console output.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

# Our records reach the host's handlers, but never Python's last-resort stderr handler.
logging.getLogger("claif_cod").addHandler(logging.NullHandler())
logging.getLogger("claif_codd").addHandler(logging.NullHandler())

# Attributes of logging.LogRecord: passed as `extra`, they would make logging raise KeyError.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _rename_reserved(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in [k for k in event_dict if k in _RESERVED and k != "event"]:
        event_dict[f"{key}_"] = event_dict.pop(key)
    return event_dict


MAX_VALUE_CHARS = 300
"""Every string in a log record is cut to this: many come from clients (names, ids, models, paths)."""
MAX_TRACEBACK_CHARS = 16_000


def cap_strings(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor; the daemon's handler also runs it on other libraries' records."""
    for key, value in event_dict.items():
        limit = MAX_TRACEBACK_CHARS if key == "exception" else MAX_VALUE_CHARS
        if isinstance(value, str) and len(value) > limit:
            event_dict[key] = f"{value[:limit]}...(+{len(value) - limit} chars)"
    return event_dict


_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.processors.format_exc_info,
    cap_strings,
    _rename_reserved,
    structlog.stdlib.render_to_log_kwargs,
]


class _BoundLogger(structlog.stdlib.BoundLogger):
    """Drops a debug record before structlog's processor chain when debug is off: some are written
    on every turn, and building one to drop it cost ~2.5 µs."""

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return super().debug(event, *args, **kw)


def get_logger(name: str) -> Any:
    """Bound at once: nothing here depends on structlog's global configuration, and a lazy proxy
    would cost every record two more calls (or, uncached, a new logger)."""
    return structlog.wrap_logger(logging.getLogger(name), processors=_PROCESSORS, wrapper_class=_BoundLogger).bind()
