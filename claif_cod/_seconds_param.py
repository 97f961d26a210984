"""A command-line number of seconds, for ``claif-cod`` and ``claif-codd`` alike."""

from __future__ import annotations

import math
from typing import Any

import click


class PositiveSeconds(click.FloatRange):
    """Seconds greater than 0 (``inf``: never); ``nan`` is refused, not taken to mean anything."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail("nan is not a number of seconds", param, ctx)
        return seconds


class Seconds(click.FloatRange):
    """Seconds, 0 or more (``inf``: no limit); ``nan`` is refused: a deadline of ``nan`` compares false
    with every time, so it would silently mean none at all, or a drain that ends at once."""

    def __init__(self) -> None:
        super().__init__(min=0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail("nan is not a number of seconds", param, ctx)
        return seconds
