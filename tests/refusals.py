"""A failure injected where openai has built a request but not yet handed it to the transport (an
httpx request hook), and how openai reports it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import openai
import pytest


class Refused(Exception):
    pass


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """openai raises what failed before the transport as it is, or (older versions) wrapped."""
    with pytest.raises((Refused, openai.APIConnectionError)) as info:
        yield
    assert isinstance(info.value, Refused) or isinstance(info.value.__cause__, Refused)
