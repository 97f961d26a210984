"""When a Codex child that keeps us waiting counts as hung: the timings, and the probe that asks.

How they are applied is :mod:`claif_cod.engine.appserver`'s (its module documentation, "Liveness").
"""

from __future__ import annotations

from dataclasses import dataclass

PROBE_METHOD = "thread/loaded/list"
"""Codex has no ping; this one is cheap, side-effect free and answered while turns run."""


@dataclass(frozen=True)
class Liveness:
    """How long Codex may keep us waiting before we decide it is gone (seconds).

    The rule: a child is *hung* when it has been asked something (a request whose
    deadline passed, or a probe because a turn went quiet) and then said nothing at all,
    to anyone, for ``probe_timeout``.  Slowness alone is never fatal: a turn without a
    caller deadline may take hours while Codex answers probes, and a request that times
    out while the child still answers a probe fails alone (as a timeout).
    """

    request_timeout: float = 30.0
    """Deadline of every request to the app-server that does not set its own."""
    probe_timeout: float = 10.0
    """How long the liveness probe may go unanswered (with no other output) before the child is condemned."""
    turn_silence: float | None = 60.0
    """A turn that received nothing for this long triggers a probe (``None``: never)."""
    interrupt_grace: float = 5.0
    """How long ``turn/interrupt`` and the ``turn/completed`` that must follow it may take."""
    kill_grace: float = 2.0
    """Each rung of the kill ladder (stdin EOF, SIGTERM) waits this long before the next."""


DEFAULT_LIVENESS = Liveness()
"""Used when none is given; tests may replace it (read at construction time)."""
