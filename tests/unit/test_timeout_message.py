"""A passed deadline is reported rounded, with where it came from (not ``1.63316 s``)."""

from __future__ import annotations

from claif_cod.engine.errors import TurnTimedOut


def test_deadline_is_rounded_and_names_its_source() -> None:
    assert str(TurnTimedOut(1.63316, "X-Stainless-Read-Timeout")) == (
        "turn exceeded its 1.6 s deadline (from X-Stainless-Read-Timeout) and was interrupted"
    )
    assert str(TurnTimedOut(2.0)) == "turn exceeded its 2 s deadline and was interrupted"


def test_a_streams_timeout_says_no_event_came() -> None:
    assert str(TurnTimedOut(1.2, "the client's timeout", between_events=True)) == (
        "turn sent no event for 1.2 s, its timeout (from the client's timeout), and was interrupted"
    )
