"""Pacing of published streams (the Kafka side is covered by the integration tests)."""

from __future__ import annotations

import pytest

from cdi_stream.publish import Pace, event_seconds


def test_rate_spaces_events_evenly() -> None:
    pace = Pace(rate=200)
    assert [pace.due(i, 0.0) for i in range(3)] == [0.0, 0.005, 0.01]


def test_speed_compresses_event_time() -> None:
    pace = Pace(speed=3600)
    assert pace.due(10, 7200.0) == 2.0


def test_the_slower_of_rate_and_speed_wins() -> None:
    pace = Pace(rate=1, speed=3600)
    assert pace.due(5, 3600.0) == 5.0
    assert pace.due(1, 36000.0) == 10.0


def test_no_limits_sends_at_once() -> None:
    assert Pace().due(1000, 1e6) == 0.0


def test_negative_pace_is_refused() -> None:
    with pytest.raises(ValueError):
        Pace(rate=-1)


def test_event_seconds_reads_rfc3339() -> None:
    assert event_seconds({"occurred_at": "1970-01-01T00:01:00Z"}) == 60.0
