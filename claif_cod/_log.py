"""structlog loggers that hand records to stdlib ``logging``.

A library must stay quiet unless its host configures logging, and must not take over
structlog's global configuration; the daemon attaches its own JSON or console output.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.processors.format_exc_info,
    structlog.stdlib.render_to_log_kwargs,
]


def get_logger(name: str) -> Any:
    return structlog.wrap_logger(
        logging.getLogger(name), processors=_PROCESSORS, wrapper_class=structlog.stdlib.BoundLogger
    )
