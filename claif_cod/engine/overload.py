"""Codex's "no room for this request now", and when to send it again.

Codex's app-server reads requests into a bounded queue (128 messages in 0.163-0.171). When the
queue is full a request is refused at once with ``-32001 "Server overloaded; retry later."``
and never acted on. But the refusal goes out through Codex's queue of answers, and when that is
full too the refusal is dropped (0.163: of 600 ``model/list`` sent at once, 40-208 were never
answered). So a client keeps its requests to one process well under the queue's size.

Should a refusal come all the same (the queue's size is Codex's to change), the request is sent
again with exponential backoff and jitter, as Codex's documentation asks of clients: a refused
request did not happen, so that is safe for every method, ``turn/start`` included.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

OVERLOADED = -32001
IN_FLIGHT = 64
"""Requests one client keeps in one Codex at a time: half its queue, the rest left for our
notifications and answers to its requests, which wait for room rather than being refused."""
UNQUEUED = frozenset({"turn/interrupt"})
"""Sent at once, however many requests are in flight: a caller told its turn stopped must not wait
behind other callers' requests for that to happen."""
BACKOFF_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Waits before each new attempt (each times 0.5-1.5, at random): ~1.9 s in all, then the refusal stands."""


def backoff() -> Iterator[float]:
    """The jittered waits of one request's retries: jitter keeps a refused burst from coming back at once."""
    return (delay * random.uniform(0.5, 1.5) for delay in BACKOFF_S)
