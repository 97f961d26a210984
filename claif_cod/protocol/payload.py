"""The struct configuration every params, result and event of the claif-codd protocol shares.

Compatibility rules, enforced by the struct configuration rather than by hand:

* unknown fields are ignored, so a newer peer may add fields freely;
* optional fields have defaults and are omitted when equal to them, so an older peer's message
  still decodes and frames stay small;
* names on the wire are the snake_case field names.
"""

from __future__ import annotations

import msgspec


class Payload(msgspec.Struct, omit_defaults=True):
    """Base of params, results and their parts: fields equal to their default stay off the wire."""
