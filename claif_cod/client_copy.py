"""``copy()`` / ``with_options()`` for the Codex clients: the same engine, other request defaults.

openai's own ``copy`` builds a new client from ``openai.OpenAI``'s constructor arguments (base
URL, organization, HTTP client...), which a Codex client does not take, so it raised a
``TypeError``.  A copy here shares the original's transport core (the engine with its warm Codex
processes and threads, or the daemon connection) and its httpx client, as openai's copy shares the
connection pool, and changes what applies to a Codex client: the timeout, the retries, the default
headers and query.  Anything else is refused by name rather than dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx2
from openai import NOT_GIVEN, NotGiven

from claif_cod.transport.transport_core import TransportCore

if TYPE_CHECKING:
    from typing_extensions import Self


class _Client(Protocol):
    _core: TransportCore
    _custom_headers: Mapping[str, str]
    _custom_query: Mapping[str, object]


C = TypeVar("C", bound=_Client)


def _given(value: object) -> bool:
    return value is not None and not isinstance(value, NotGiven)


def _merged(
    current: Mapping[str, Any], add: Mapping[str, Any] | None, replace: Mapping[str, Any] | None, what: str
) -> Mapping[str, Any]:
    """openai's rule: ``default_X`` adds to the client's, ``set_default_X`` replaces them, not both."""
    if add is not None and replace is not None:
        raise ValueError(f"The `default_{what}` and `set_default_{what}` arguments are mutually exclusive")
    if add is not None:
        return {**current, **add}
    return current if replace is None else dict(replace)


def copied(
    client: C,
    *,
    timeout: Any,
    max_retries: Any,
    default_headers: Mapping[str, str] | None,
    set_default_headers: Mapping[str, str] | None,
    default_query: Mapping[str, object] | None,
    set_default_query: Mapping[str, object] | None,
    other: Mapping[str, Any],
) -> C:
    refused = sorted(name for name, value in other.items() if _given(value))
    if refused:
        raise TypeError(
            f"{type(client).__name__}.copy() cannot change {', '.join(refused)}: a copy shares the original's "
            f"Codex engine; make a new {type(client).__name__} for other settings"
        )
    clone = object.__new__(type(client))
    cached = {name for cls in type(client).__mro__ for name, v in vars(cls).items() if isinstance(v, cached_property)}
    # openai's resources (``chat``, ``models``...) are cached per client and bound to it: the copy makes its own.
    clone.__dict__.update({name: value for name, value in vars(client).items() if name not in cached})
    if not isinstance(timeout, NotGiven):
        clone.timeout = timeout  # type: ignore[attr-defined]
    if not isinstance(max_retries, NotGiven):
        clone.max_retries = max_retries  # type: ignore[attr-defined]
    clone._custom_headers = _merged(client._custom_headers, default_headers, set_default_headers, "headers")
    clone._custom_query = _merged(client._custom_query, default_query, set_default_query, "query")
    client._core.attach(clone)
    return clone


class Copyable:
    """``copy()`` and its alias ``with_options()``, for both clients (first in their bases)."""

    def copy(
        self,
        *,
        timeout: float | httpx2.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        default_headers: Mapping[str, str] | None = None,
        set_default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        set_default_query: Mapping[str, object] | None = None,
        **other: Any,
    ) -> Self:
        """A client on the same engine with other request defaults."""
        return copied(
            self,  # type: ignore[type-var]
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            set_default_headers=set_default_headers,
            default_query=default_query,
            set_default_query=set_default_query,
            other=other,
        )

    with_options = copy
