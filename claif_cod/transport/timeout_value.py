"""The read timeout a request carries, as claif_cod takes it: seconds (``inf``: none), or None."""

from __future__ import annotations

import math


def timeout_seconds(value: float) -> float:
    """``value`` as a request's timeout.  ``nan`` is refused, before anything is sent, with the
    ``ValueError`` openai's own client raises for it (its socket's ``settimeout`` refuses it): taken on,
    it reached the engine's timer, which failed the request as an internal error (a 500 that openai
    retried, each try warning of a coroutine never awaited)."""
    if math.isnan(value):
        raise ValueError("Invalid timeout: nan is not a number of seconds")
    return value
