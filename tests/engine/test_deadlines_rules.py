"""The 24-hour rule: warnings, not-recorded findings at due_at, and late recordings."""

from __future__ import annotations

import datetime as dt
import json

from cdi_stream.contract import parse_incident_event
from cdi_stream.engine import Engine, EngineConfig
from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import T0, Incident, Outcome, run


def test_unrecorded_crime_warns_at_12_and_20_hours_then_breaches_at_24(book: RuleBook) -> None:
    inc = Incident().reported(0)
    out = run(book, inc.events, until=11.99)
    assert out.changes == []
    out = run(book, inc.events, until=12)
    warning = out.one("deadline_warning")
    assert (warning.revision, warning.status, warning.priority) == (1, "open", "P1")
    assert warning.event_time == T0 + dt.timedelta(hours=12)
    assert warning.due_at == T0 + dt.timedelta(hours=24)
    assert warning.observed == {"hours_since_clock_start": "12"}

    out = run(book, inc.events, until=30)
    assert out.history("deadline_warning") == [(1, "open"), (2, "open"), (3, "withdrawn")]
    cnr = out.one("crime_not_recorded")
    assert (cnr.status, cnr.priority, cnr.victim_ref) == ("open", "P1", "V1")
    assert cnr.event_time == T0 + dt.timedelta(hours=24)
    assert out.open() == [("crime_not_recorded", "V1")]


def test_crime_recorded_before_twelve_hours_raises_nothing(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(5)
    assert run(book, inc.events, until=100).changes == []


def test_crime_recorded_between_warnings_resolves_the_warning(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(15)
    out = run(book, inc.events, until=48)
    assert out.history("deadline_warning") == [(1, "open"), (2, "resolved")]
    assert out.open() == []
    assert out.final("late_recording") == []


def test_recorded_exactly_at_due_is_in_time(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(24)
    out = run(book, inc.events, until=48)
    assert out.final("crime_not_recorded") == []
    assert out.final("late_recording") == []
    assert out.statuses() == [("deadline_warning", "V1", "resolved")]


def test_recorded_at_due_arriving_after_due_fired_ends_the_same(book: RuleBook) -> None:
    engine = Engine(book)
    report, crime = Incident().reported(0).crime(24).events
    changes = engine.apply(parse_incident_event(json.dumps(report)))
    changes += engine.advance_to((T0 + dt.timedelta(hours=24)).timestamp(), inclusive=True)
    assert [c.finding for c in changes if c.status == "open"][-1] == "crime_not_recorded"
    changes += engine.apply(parse_incident_event(json.dumps(crime)))
    changes += engine.advance_to((T0 + dt.timedelta(hours=48)).timestamp())
    out = Outcome(changes)
    assert out.open() == []
    assert out.final("late_recording") == []
    assert out.one("crime_not_recorded").status == "withdrawn"


def test_one_second_after_due_is_late_and_resolves_the_breach(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(24 + 1 / 3600)
    out = run(book, inc.events, until=48)
    assert out.history("crime_not_recorded") == [(1, "open"), (2, "resolved")]
    late = out.one("late_recording")
    assert (late.revision, late.status) == (1, "resolved")
    # Never "0.0 hours late", and the seconds shown: the flag must read as late.
    assert late.observed["hours_late"] == "0.01"
    assert late.observed["recorded_at"] == "2026-01-06T08:00:01Z"  # RFC 3339, as the contract
    assert late.expected["recorded_by"] == "2026-01-06T08:00:00Z"
    assert "first recorded at 2026-01-06 08:00:01 UTC" in late.explanation
    assert late.event_time == T0 + dt.timedelta(hours=24, seconds=1)


def test_late_recording_of_the_second_victim_resolves_the_additional_finding(
    book: RuleBook,
) -> None:
    inc = Incident().reported(0, disclosures=[("8N", "V1"), ("105A", "V2")])
    inc.crime(2, "8N", "V1", "C1").crime(30, "105A", "V2", "C2")
    out = run(book, inc.events, until=48)
    assert out.history("additional_crime_not_recorded") == [(1, "open"), (2, "resolved")]
    assert [c.victim_ref for c in out.final("late_recording")] == ["V2"]
    assert out.final("crime_not_recorded") == []


def test_disclosure_added_later_starts_its_own_clock(book: RuleBook) -> None:
    inc = Incident().reported(0).crime(1)
    inc.updated(
        10,
        disclosures=[{"disclosure_id": "D2", "offence_code": "105A", "victim_ref": "V2"}],
        victims=["V2"],
    )
    out = run(book, inc.events, until=21.9)
    assert out.changes == []
    out = run(book, inc.events, until=22)
    assert out.one("deadline_warning").victim_ref == "V2"
    out = run(book, inc.events, until=34)
    add = out.one("additional_crime_not_recorded")
    assert add.due_at == T0 + dt.timedelta(hours=34)


def test_explicit_disclosed_at_is_kept_by_a_replacing_disclosure(book: RuleBook) -> None:
    inc = Incident().reported(0, disclosures=[])
    inc.updated(
        1,
        disclosures=[
            {
                "disclosure_id": "D1",
                "offence_code": "105A",
                "victim_ref": "V1",
                "disclosed_at": "2026-01-05T14:00:00Z",
            }
        ],
    )
    inc.updated(3, disclosures=[{"disclosure_id": "D1", "offence_code": "8N", "victim_ref": "V1"}])
    out = run(book, inc.events, until=40)
    assert out.one("crime_not_recorded").due_at == T0 + dt.timedelta(hours=30)


def test_warning_offsets_are_configurable(book: RuleBook) -> None:
    cfg = EngineConfig(first_warning=6 * 3600, second_warning=9 * 3600, deadline=24 * 3600)
    out = run(book, Incident().reported(0).events, until=6, config=cfg)
    assert out.one("deadline_warning").event_time == T0 + dt.timedelta(hours=6)


def test_contrary_evidence_means_no_crime_is_owed(book: RuleBook) -> None:
    inc = Incident().reported(0).contrary(2)
    assert run(book, inc.events, until=48).changes == []


def test_contrary_evidence_after_the_breach_withdraws_it(book: RuleBook) -> None:
    inc = Incident().reported(0).contrary(30)
    out = run(book, inc.events, until=48)
    assert out.history("crime_not_recorded") == [(1, "open"), (2, "withdrawn")]
    assert out.open() == []
