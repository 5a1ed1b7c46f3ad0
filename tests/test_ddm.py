"""The DDM review queue and its rendering, without a broker."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from cdi_stream.contract import FlagChange
from cdi_stream.ddm import (
    EXPLANATION_CHARS,
    DecisionError,
    ReviewQueue,
    format_due,
    publish_decision,
    queue_json,
    render_queue,
)
from cdi_stream.settings import load_settings

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def flag(flag_id: str, revision: int = 1, **fields: Any) -> FlagChange:
    values: dict[str, Any] = {
        "flag_id": flag_id,
        "revision": revision,
        "status": "open",
        "finding": "crime_not_recorded",
        "rule_id": "RECORD-24H",
        "rule_title": "Crime not recorded within 24 hours",
        "reference": "HOCR Section A",
        "edition": "2023-05",
        "priority": "P2",
        "incident_id": f"INC-{flag_id}",
        "victim_ref": "V-1",
        "expected": {"offence_code": "8N"},
        "observed": {"offence_code": "105A"},
        "due_at": None,
        "event_time": NOW - timedelta(hours=1),
        "emitted_at": NOW - timedelta(hours=1),
        "explanation": f"Explanation of {flag_id}.",
    }
    values.update(fields)
    return FlagChange.model_validate(values)


def queue_of(*changes: FlagChange) -> ReviewQueue:
    queue = ReviewQueue()
    for change in changes:
        queue.apply(change)
    return queue


def ids(queue: ReviewQueue) -> list[str]:
    return [f.flag_id for f in queue.open_flags()]


def rendered(queue: ReviewQueue, *, limit: int = 50, caption: str | None = None) -> str:
    console = Console(record=True, width=200)
    console.print(render_queue(queue, now=NOW, limit=limit, caption=caption))
    return console.export_text()


# --------------------------------------------------------------------------- ordering


def test_open_flags_are_ordered_priority_then_due_then_event_time_then_id() -> None:
    early, late = NOW - timedelta(hours=5), NOW - timedelta(hours=2)
    queue = queue_of(
        flag("p3", priority="P3", due_at=NOW - timedelta(hours=3)),
        flag("p2-no-due", priority="P2"),
        flag("p2-due-later", priority="P2", due_at=NOW + timedelta(hours=5)),
        flag("p2-due-soon", priority="P2", due_at=NOW + timedelta(hours=1)),
        flag("p1-no-due-late", priority="P1", event_time=late),
        flag("p1-no-due-early", priority="P1", event_time=early),
        flag("p1-due-b", priority="P1", due_at=NOW + timedelta(hours=2), event_time=late),
        flag("p1-due-a", priority="P1", due_at=NOW + timedelta(hours=2), event_time=late),
        flag("p1-due-older", priority="P1", due_at=NOW + timedelta(hours=2), event_time=early),
    )
    assert ids(queue) == [
        "p1-due-older",
        "p1-due-a",
        "p1-due-b",
        "p1-no-due-early",
        "p1-no-due-late",
        "p2-due-soon",
        "p2-due-later",
        "p2-no-due",
        "p3",
    ]


def test_order_does_not_depend_on_arrival_order() -> None:
    changes = [
        flag(
            f"f{n}",
            priority=f"P{n % 3 + 1}",
            due_at=NOW + timedelta(minutes=n % 4) if n % 5 else None,
        )
        for n in range(30)
    ]
    expected = ids(queue_of(*changes))
    shuffled = changes[:]
    random.Random(7).shuffle(shuffled)
    assert ids(queue_of(*shuffled)) == expected


# --------------------------------------------------------------------------- revisions


def test_a_newer_revision_replaces_the_flag() -> None:
    queue = ReviewQueue()
    assert queue.apply(flag("a", 1, priority="P3"))
    assert queue.apply(flag("a", 2, priority="P1"))
    (only,) = queue.open_flags()
    assert (only.revision, only.priority) == (2, "P1")
    assert len(queue) == 1


def test_older_and_equal_revisions_are_ignored() -> None:
    queue = ReviewQueue()
    assert queue.apply(flag("a", 2, explanation="second"))
    assert not queue.apply(flag("a", 1, explanation="first"))
    assert not queue.apply(flag("a", 2, explanation="a republished second"))
    got = queue.get("a")
    assert got is not None
    assert (got.revision, got.explanation) == (2, "second")


def test_out_of_order_arrival_keeps_the_latest_status() -> None:
    # Withdrawn at revision 3; stale open revisions arriving afterwards must not reopen it.
    queue = queue_of(flag("a", 3, status="withdrawn"), flag("a", 1), flag("a", 2))
    assert queue.open_flags() == []
    assert queue.counts().by_status == {"open": 0, "resolved": 0, "withdrawn": 1}


def test_resolved_and_withdrawn_flags_leave_the_queue() -> None:
    queue = queue_of(
        flag("open"),
        flag("resolved"),
        flag("resolved", 2, status="resolved"),
        flag("withdrawn"),
        flag("withdrawn", 2, status="withdrawn"),
    )
    assert ids(queue) == ["open"]


def test_a_flag_can_be_reopened_by_a_later_revision() -> None:
    queue = queue_of(flag("a", 1), flag("a", 2, status="withdrawn"), flag("a", 3))
    assert ids(queue) == ["a"]


def test_prune_closed_forgets_closed_flags_but_not_their_revision() -> None:
    queue = queue_of(
        flag("open"),
        flag("done", 1),
        flag("done", 2, status="resolved"),
        flag("gone", 4, status="withdrawn"),
    )
    assert queue.prune_closed() == 2
    assert len(queue) == 1
    assert queue.get("done") is None
    assert "gone" not in queue
    # A republished stale revision stays ignored; a newer one reopens the flag.
    assert not queue.apply(flag("gone", 3))
    assert not queue.apply(flag("done", 2))
    assert ids(queue) == ["open"]
    assert queue.apply(flag("gone", 5))
    assert ids(queue) == ["gone", "open"]
    assert queue.prune_closed() == 0


# --------------------------------------------------------------------------- counts


def test_counts_by_status_and_finding() -> None:
    queue = queue_of(
        flag("a", finding="late_recording"),
        flag("b", finding="late_recording", status="resolved"),
        flag("c", finding="wrong_classification"),
        flag("d", finding="wrong_classification"),
        flag("e", finding="crime_not_recorded", status="withdrawn"),
        flag("e", 2, finding="crime_not_recorded", status="withdrawn"),
        flag("c", 1, finding="wrong_classification", status="resolved"),  # stale: ignored
    )
    counts = queue.counts()
    assert counts.by_status == {"open": 3, "resolved": 1, "withdrawn": 1}
    assert counts.total == 5
    assert counts.by_finding == {
        "crime_not_recorded": {"open": 0, "resolved": 0, "withdrawn": 1},
        "late_recording": {"open": 1, "resolved": 1, "withdrawn": 0},
        "wrong_classification": {"open": 2, "resolved": 0, "withdrawn": 0},
    }
    assert list(counts.by_finding) == sorted(counts.by_finding)


def test_counts_of_an_empty_queue() -> None:
    counts = ReviewQueue().counts()
    assert counts.by_status == {"open": 0, "resolved": 0, "withdrawn": 0}
    assert counts.by_finding == {}
    assert counts.total == 0


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=3, minutes=12, seconds=59), "in 3h 12m"),
        (timedelta(hours=2), "in 2h"),
        (timedelta(minutes=5), "in 5m"),
        (timedelta(seconds=30), "in <1m"),
        (timedelta(0), "in <1m"),
        (timedelta(days=1, hours=4, minutes=10), "in 1d 4h"),
        (timedelta(days=2), "in 2d"),
        (-timedelta(hours=2), "overdue 2h"),
        (-timedelta(hours=2, minutes=30), "overdue 2h 30m"),
        (-timedelta(seconds=10), "overdue <1m"),
        (-timedelta(days=3, hours=1), "overdue 3d 1h"),
    ],
)
def test_format_due(delta: timedelta, text: str) -> None:
    assert format_due(NOW + delta, NOW) == text


def test_deadlines_are_shown_against_the_stream_time_when_it_runs_ahead() -> None:
    """A demo compresses event time: a deadline hours ahead of the wall clock may
    already be past in the stream, and "due in 20h" would mislead."""
    ahead = NOW + timedelta(hours=30)
    queue = queue_of(
        flag("a", event_time=ahead, due_at=ahead - timedelta(hours=2)),
        flag("b", event_time=NOW - timedelta(hours=3), due_at=NOW + timedelta(hours=1)),
    )
    assert queue.now(NOW) == ahead
    shown = queue.get("a")
    assert shown is not None
    assert format_due(shown.due_at, queue.now(NOW)) == "overdue 2h"
    live = queue_of(flag("c", event_time=NOW - timedelta(minutes=5)))
    assert live.now(NOW) == NOW  # live, the stream trails the wall clock
    assert ReviewQueue().now(NOW) == NOW


def test_format_due_without_a_deadline() -> None:
    assert format_due(None, NOW) == "-"


def test_render_queue_shows_one_row_per_open_flag() -> None:
    queue = queue_of(
        flag(
            "flag-urgent",
            priority="P1",
            finding="rape_not_resolved",
            incident_id="INC-20261123-000105",
            victim_ref="V-5e5e01",
            due_at=NOW + timedelta(hours=3, minutes=12),
            expected={"record_by": "2026-11-24 12:12 UTC"},
            observed={"closure_type": "non_crime", "recorded_codes": "none"},
        ),
        flag(
            "flag-late",
            priority="P2",
            finding="late_recording",
            incident_id="INC-20261123-000200",
            victim_ref=None,
            due_at=NOW - timedelta(hours=2),
        ),
        flag("flag-closed", 2, status="resolved", incident_id="INC-CLOSED"),
    )
    text = rendered(queue)
    assert "DDM review queue: 2 open (P1 1, P2 1)" in text
    lines = text.splitlines()
    urgent = next(i for i, line in enumerate(lines) if "flag-urgent" in line)
    late = next(i for i, line in enumerate(lines) if "flag-late" in line)
    assert urgent < late
    for part in ("P1", "rape_not_resolved", "INC-20261123-000105", "V-5e5e01", "in 3h 12m"):
        assert part in lines[urgent]
    assert "exp record_by=2026-11-24 12:12 UTC" in lines[urgent]
    assert "obs closure_type=non_crime, recorded_codes=none" in lines[urgent + 1]
    for part in ("P2", "late_recording", "INC-20261123-000200", "overdue 2h"):
        assert part in lines[late]
    assert "exp offence_code=8N" in lines[late]
    assert "obs offence_code=105A" in lines[late + 1]
    assert "Explanation of flag-late." in text
    assert "flag-closed" not in text
    assert "INC-CLOSED" not in text


def test_render_queue_marks_flags_a_ddm_has_upheld() -> None:
    queue = queue_of(flag("flag-new"), flag("flag-decided", 2, ddm_decision="upheld"))
    lines = rendered(queue).splitlines()
    decided = next(i for i, line in enumerate(lines) if "flag-decided" in line)
    fresh = next(i for i, line in enumerate(lines) if "flag-new" in line)
    assert "upheld" in lines[decided + 1]
    assert "upheld" not in lines[fresh] + lines[fresh + 1]


def test_render_queue_limits_rows_and_says_so() -> None:
    queue = queue_of(*(flag(f"f{n}", event_time=NOW - timedelta(minutes=n)) for n in range(5)))
    text = rendered(queue, limit=2, caption="as of now")
    assert "showing 2 of 5; as of now" in text
    assert [f"f{n}" in text for n in range(5)] == [False, False, False, True, True]


def test_render_queue_truncates_the_explanation() -> None:
    long = "word " * 100
    text = rendered(queue_of(flag("a", explanation=long)))
    assert "…" in text
    assert text.count("word") < EXPLANATION_CHARS // 5 + 1


def test_render_queue_prints_stream_text_literally_and_safely() -> None:
    queue = queue_of(
        flag("a", explanation="[bold red]not markup[/] then \x1b[2Jescape and \u202ebidi")
    )
    text = rendered(queue)
    assert "[bold red]not markup[/]" in text
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "escape" in text


@pytest.mark.parametrize("width", [80, 100, 120, 160, 200])
def test_render_queue_fits_the_width_and_keeps_what_a_ddm_acts_on(width: int) -> None:
    queue = queue_of(
        flag(
            "flag-9dd881fb5115ffe50249b249",
            priority="P1",
            finding="additional_crime_not_recorded",
            incident_id="INC-20261123-000104",
            due_at=NOW - timedelta(hours=23, minutes=59),
            explanation="word " * 40,
        ),
        flag("flag-c5ed44b13f1e05d733c380e1", incident_id="INC-20261123-000106"),
    )
    console = Console(record=True, width=width)
    console.print(render_queue(queue, now=NOW, limit=10, width=width))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    for whole in (
        "P1",
        "flag-9dd881fb5115ffe50249b249",
        "INC-20261123-000104",
        "overdue 23h 59m",
        "flag-c5ed44b13f1e05d733c380e1",
    ):
        assert whole in text
    # Optional columns come and go with the width, the least useful first.
    header = text.splitlines()[2]
    assert ("explanation" in header) == (width >= 160)
    assert ("expected / observed" in header) == (width >= 200)
    assert ("finding" in header) == (width >= 100)


def test_render_an_empty_queue() -> None:
    text = rendered(ReviewQueue())
    assert "DDM review queue: 0 open" in text


# --------------------------------------------------------------------------- JSON


def test_queue_json_lists_open_flags_as_contract_messages_in_queue_order() -> None:
    changes = [
        flag("b", priority="P2"),
        flag("a", priority="P1", due_at=NOW + timedelta(hours=1)),
        flag("c", priority="P3"),
        flag("c", 2, status="withdrawn"),
        flag("b", 2, priority="P2", explanation="updated"),
    ]
    queue = queue_of(*changes)
    data = json.loads(queue_json(queue))
    assert [d["flag_id"] for d in data] == ["a", "b"]
    assert [FlagChange.model_validate(d) for d in data] == queue.open_flags()
    assert data[1]["revision"] == 2
    assert data[1]["explanation"] == "updated"
    assert data[0]["due_at"] == "2026-11-24T10:00:00Z"
    assert list(data[0]) == list(FlagChange.model_fields)


def test_queue_json_is_stable() -> None:
    changes = [flag(f"f{n}", n % 3 + 1, priority=f"P{n % 2 + 1}") for n in range(12)]
    first = queue_json(queue_of(*changes))
    for seed in range(3):
        shuffled = changes[:]
        random.Random(seed).shuffle(shuffled)
        assert queue_json(queue_of(*shuffled)) == first
    assert queue_json(ReviewQueue()) == "[]"


# --------------------------------------------------------------- decisions, no broker

# Nothing listens here: a test that reached Kafka would fail with BrokerError instead.
NO_BROKER = load_settings(kafka_bootstrap_servers="127.0.0.1:9")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": "   "}, "give a reason"),
        ({"decision": "maybe"}, "decision"),
        ({"ddm_ref": ""}, "ddm_ref"),
        ({"reason": "x" * 20_001}, "reason"),
        ({"decided_at": datetime(2026, 11, 24, 9, 0)}, "decided_at"),
        ({"flag_id": ""}, "flag_id"),
        ({"incident_id": "I" * 65}, "incident_id"),
    ],
)
def test_publish_decision_rejects_bad_input_before_touching_kafka(
    changes: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "flag_id": "flag-1",
        "incident_id": None,
        "decision": "upheld",
        "reason": "Recorded as 8N.",
        "ddm_ref": "DDM-7",
    }
    arguments.update(changes)
    with pytest.raises(DecisionError, match=message):
        publish_decision(NO_BROKER, **arguments)
