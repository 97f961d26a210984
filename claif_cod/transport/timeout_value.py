"""The read timeout a request carries, as claif_cod takes it: seconds (``inf``: none), or None."""

from __future__ import annotations

import math


def timeout_seconds(value: float) -> float:
    """``value`` as a request's timeout.  ``nan`` and a negative number are refused, before anything is
    sent, with the ``ValueError`` openai's own client raises for them (its socket's ``settimeout``
    refuses them): taken on, ``nan`` reached the engine's timer, which failed the request as an internal
    error (a 500 that openai retried, each try warning of a coroutine never awaited), and a negative one
    timed the request out as if it had been sent."""
    if math.isnan(value):
        raise ValueError("Invalid timeout: nan is not a number of seconds")
    if value < 0:
        raise ValueError(f"Timeout value out of range: {value:g} (a timeout is 0 or more seconds)")
    return value
