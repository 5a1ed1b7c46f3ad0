"""One test per defect found in the compliance report's figures, each failed before
its fix; crafted event files with figures worked out by hand."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from cdi_stream.contract import DdmDecision
from cdi_stream.engine.flags import flag_id
from cdi_stream.report.build import report_from
from cdi_stream.report.collect import Collected, collect
from cdi_stream.report.model import Report
from cdi_stream.rules.book import RuleBook
from tests.engine.scenario import T0, Incident


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _decision(flag: str, incident_id: str, decision: str, when: dt.datetime) -> dict[str, Any]:
    made = DdmDecision(
        decision_id=f"DEC-{flag}-{decision}",
        flag_id=flag,
        incident_id=incident_id,
        decision=decision,
        reason="checked",
        decided_at=when,
        ddm_ref="DDM-1",
    )
    return dict(json.loads(made.model_dump_json()))


def _report(
    tmp_path: Path,
    book: RuleBook,
    events: list[dict[str, Any]],
    decisions: list[dict[str, Any]] | None = None,
    **period: dt.datetime,
) -> tuple[Collected, Report]:
    path = _write(tmp_path / "events.jsonl", events)
    given = _write(tmp_path / "decisions.jsonl", decisions) if decisions is not None else None
    gathered = collect(path, book=book, decisions_path=given, **period)
    sources = (str(path), None, str(given) if given else None)
    return gathered, report_from(gathered, book=book, yearly_volume=None, sources=sources)


def test_a_decision_after_the_last_event_does_not_move_the_evaluation_time(
    tmp_path: Path, book: RuleBook
) -> None:
    """The crime is not yet due at the last event (1 h): pending, not unrecorded, even
    when a decision made two days later is given."""
    events = Incident().reported(0).updated(1, qualifiers=["alcohol"]).events
    late = [_decision("flag-000000000000000000000000", "INC-OTHER", "upheld", at(48))]
    for decisions in (None, late):
        gathered, report = _report(tmp_path, book, events, decisions)
        assert gathered.evaluated_at == at(1).timestamp()
        assert (report.recording_rate.overall.denominator, report.recording_rate.pending) == (
            0,
            1,
        )
        assert not any(f.finding == "crime_not_recorded" for f in gathered.flags.values())


def test_a_rape_report_closed_as_n100_counts_as_an_n100_record_does(
    tmp_path: Path, book: RuleBook
) -> None:
    """An N100 with a rationale stands in for a rape crime, whether recorded as an N100
    or given as the closure: in both the numerator and the denominator, from its time."""
    last = Incident("INC-Z").reported(48, disclosures=[("8N", "V9")]).crime(48.5, "8N", "V9")
    record = Incident("INC-A").reported(0, disclosures=[("19C", "V1")]).n100(2)
    closure = Incident("INC-A").reported(0, disclosures=[("19C", "V1")])
    closure.closed(2, "n100", rationale="credible evidence it did not occur")
    for inc in (record, closure):
        _, report = _report(tmp_path, book, inc.events + last.events)
        rape = next(c.rate for c in report.recording_rate.by_category if c.category == "rape")
        assert (rape.numerator, rape.denominator) == (1, 1)
        within = report.timeliness.overall.within_24h
        assert (within.numerator, within.denominator) == (2, 2)  # both within 24 hours


def test_a_decision_made_before_its_flag_existed_is_not_a_verdict(
    tmp_path: Path, book: RuleBook
) -> None:
    events = Incident().reported(0).events  # not recorded: flagged at 24 h
    events += (
        Incident("INC-Z").reported(60, disclosures=[("8N", "V9")]).crime(61, "8N", "V9").events
    )
    flag = flag_id("INC-1", "NCRS-NOT-RECORDED", "victim:V1")
    gathered, report = _report(
        tmp_path, book, events, [_decision(flag, "INC-1", "rejected", at(10))]
    )
    assert gathered.flags[flag].status == "open"  # the replay could not apply it
    row = next(r for r in report.decisions.rows if r.finding == "crime_not_recorded")
    assert (row.rejected, row.median_hours_to_decision) == (0, None)
    assert (report.decisions.decisions, report.decisions.unmatched) == (0, 1)


def test_a_crime_owed_in_addition_is_not_missing_before_it_is_due(
    tmp_path: Path, book: RuleBook
) -> None:
    """Conduct edition: the assault is recorded, the stalking not yet, and the file ends
    14 h before the deadline."""
    start = dt.datetime(2019, 6, 3, 8, tzinfo=dt.UTC)
    inc = Incident(start=start).reported(0, disclosures=[("8Q", "V1"), ("8N", "V1")])
    inc.crime(2, "8N", "V1", "C1").updated(10, qualifiers=["alcohol"])
    _, report = _report(tmp_path, book, inc.events)
    rate = report.recording_rate
    assert rate.incomplete == 0
    assert (rate.overall.numerator, rate.overall.denominator) == (1, 1)


def test_flags_decided_counts_only_the_flags_of_the_period(tmp_path: Path, book: RuleBook) -> None:
    before = Incident("INC-0").reported(0)  # reported before the period
    inside = Incident("INC-1", start=T0 + dt.timedelta(days=2)).reported(0)
    inside.crime(1, "8N", "V1").updated(60, qualifiers=["alcohol"])
    outside_flag = flag_id("INC-0", "NCRS-NOT-RECORDED", "victim:V1")
    _, report = _report(
        tmp_path,
        book,
        before.events + inside.events,
        [_decision(outside_flag, "INC-0", "upheld", at(30))],
        period_start=at(24),
        period_end=at(72),
    )
    assert (report.decisions.decisions, report.decisions.unmatched) == (0, 1)


# -- review of the report, second round -------------------------------------------------


def _rate(report: Report) -> tuple[int, int]:
    overall = report.recording_rate.overall
    return overall.numerator, overall.denominator


def test_a_report_corrected_to_before_the_period_moves_the_incident_out_of_it(
    tmp_path: Path, book: RuleBook
) -> None:
    """The correction put the incident on the skip list, so its later crime record was
    never seen and the period showed a crime not recorded; the engine dates the
    incident by its earliest report, the day before."""
    inc = Incident().reported(2)
    corrected = dict(inc.events[0], event_id="INC-1-fix", occurred_at=at(3).isoformat())
    corrected["reported_at"] = (T0 - dt.timedelta(hours=1)).isoformat()
    inc.events.append(corrected)
    inc.crime(4, "8N")
    day = dict(period_start=T0, period_end=T0 + dt.timedelta(days=1))
    _, inside = _report(tmp_path, book, inc.events, **day)
    assert _rate(inside) == (0, 0)
    before = dict(period_start=T0 - dt.timedelta(days=1), period_end=T0)
    _, moved = _report(tmp_path, book, inc.events, **before)
    assert _rate(moved) == (1, 1)


def test_a_report_resent_after_the_period_still_adds_its_victim(
    tmp_path: Path, book: RuleBook
) -> None:
    inc = Incident().reported(0).crime(1, "8N")
    resent = Incident(tag="again").reported(30, disclosures=[("8N", "V1"), ("8N", "V2")]).events[0]
    events = [*inc.events, resent]  # reported_at 30 h: after the period; the engine keeps 0 h
    _, report = _report(
        tmp_path,
        book,
        events,
        period_start=T0,
        period_end=T0 + dt.timedelta(hours=12),
        as_of=at(60),  # past V2's deadline (its clock started at 30 h)
    )
    assert _rate(report) == (1, 2)  # V2 has no crime, as the engine's flag says


@pytest.mark.parametrize(("transferred_at", "in_time"), [(2, 1), (26, 0)])
def test_a_record_after_a_transfer_is_in_time_only_if_the_transfer_stood_at_the_deadline(
    tmp_path: Path, book: RuleBook, transferred_at: float, in_time: int
) -> None:
    """Transferred at 2 h, then recorded after the deadline: the engine raises no late
    recording, and timeliness counted it late. Transferred only after the deadline
    (26 h), the engine had flagged it at 24 h: late."""
    inc = Incident().reported(0).closed(transferred_at, "transferred").crime(30, "8N")
    _, report = _report(tmp_path, book, inc.events)
    within = report.timeliness.overall.within_24h
    assert (within.numerator, within.denominator) == (in_time, 1)


def test_a_rape_recorded_under_another_class_counts_in_timeliness(
    tmp_path: Path, book: RuleBook
) -> None:
    inc = Incident().reported(0, disclosures=[("19C", "V1")]).crime(1, "17A")
    _, report = _report(tmp_path, book, inc.events, as_of=at(30))
    within = report.timeliness.overall.within_24h
    assert (within.numerator, within.denominator) == (1, 1)
    assert _rate(report) == (0, 1), "its class is still wrong"


def test_a_no_crime_closure_before_the_deadline_is_owed_not_pending(
    tmp_path: Path, book: RuleBook
) -> None:
    inc = Incident().reported(0).closed(1, "non_crime")
    gathered, report = _report(tmp_path, book, inc.events)
    assert gathered.flags  # the engine flagged it at the closure
    assert _rate(report) == (0, 1)
    assert report.recording_rate.pending == 0


def test_decisions_are_joined_by_incident_too_and_a_rejection_is_final(
    tmp_path: Path, book: RuleBook
) -> None:
    events = Incident().reported(0).events + Incident("INC-2", tag="b").reported(0).events
    flag = flag_id("INC-1", "NCRS-NOT-RECORDED", "victim:V1")
    other = flag_id("INC-2", "NCRS-NOT-RECORDED", "victim:V1")
    decisions = [
        _decision(flag, "INC-2", "rejected", at(30)),  # names another incident
        _decision(other, "INC-2", "rejected", at(30)),
        {**_decision(other, "INC-2", "upheld", at(31)), "decision_id": "later"},
    ]
    _, report = _report(tmp_path, book, events, decisions, as_of=at(40))
    row = next(r for r in report.decisions.rows if r.finding == "crime_not_recorded")
    assert (row.upheld, row.rejected) == (0, 1)
    assert report.decisions.unmatched == 1


def test_a_byte_order_mark_on_a_decisions_file_loses_no_decision(
    tmp_path: Path, book: RuleBook
) -> None:
    events = Incident().reported(0).events
    flag = flag_id("INC-1", "NCRS-NOT-RECORDED", "victim:V1")
    path = _write(tmp_path / "events.jsonl", events)
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(_decision(flag, "INC-1", "upheld", at(30))).encode() + b"\n"
    )
    gathered = collect(path, book=book, decisions_path=decisions)
    assert gathered.decision_lines is not None and gathered.decision_lines.rejected == 0
    assert gathered.decisions is not None and len(gathered.decisions) == 1


def test_a_period_without_reports_and_one_bound_is_refused(tmp_path: Path, book: RuleBook) -> None:
    """It took 1970 as the missing bound (a 2,923-week trend)."""
    events = Incident().reported(0).events
    with pytest.raises(ValueError, match="no incident in the file is reported in the period"):
        _report(tmp_path, book, events, period_end=T0 - dt.timedelta(days=1))
    _, empty = _report(
        tmp_path, book, events, period_start=T0 - dt.timedelta(days=2), period_end=T0
    )
    assert _rate(empty) == (0, 0)


# -- review of the report fixes -----------------------------------------------------------


def test_timeliness_of_a_rape_counts_records_of_any_class_as_any_crime_does(
    tmp_path: Path, book: RuleBook
) -> None:
    def within(inc: Incident) -> tuple[int, int]:
        _, report = _report(tmp_path, book, inc.events, as_of=at(40))
        share = report.timeliness.overall.within_24h
        return share.numerator, share.denominator

    rape = [("19C", "V1")]
    recorded_again = Incident().reported(0, disclosures=rape).crime(1, "17A")
    recorded_again.cancelled(2, "C4").crime(30, "17A", crime_id="C2")
    assert within(recorded_again) == (0, 1), "cancelled, recorded again after the deadline"
    transferred = Incident().reported(0, disclosures=rape).closed(2, "transferred")
    assert within(transferred.crime(30, "17A")) == (1, 1), "as for any crime after a transfer"
    corrected = Incident().reported(0, disclosures=rape).crime(1, "17A")
    assert within(corrected.reclassified(30, "17A", "19C", "ABE interview")) == (1, 1)


def test_a_refused_decision_never_hides_the_valid_one_after_it(
    tmp_path: Path, book: RuleBook
) -> None:
    events = Incident().reported(0).events + Incident("INC-2", tag="b").reported(0).events
    flag = flag_id("INC-1", "NCRS-NOT-RECORDED", "victim:V1")
    decisions = [
        _decision(flag, "INC-2", "rejected", at(30)),  # names another incident: refused
        _decision(flag, "INC-1", "upheld", at(31)),
    ]
    _, report = _report(tmp_path, book, events, decisions, as_of=at(40))
    row = next(r for r in report.decisions.rows if r.finding == "crime_not_recorded")
    assert (row.upheld, row.rejected, report.decisions.unmatched) == (1, 0, 1)


def test_an_incident_reported_again_after_its_state_was_dropped_counts_in_the_period(
    tmp_path: Path, book: RuleBook
) -> None:
    """Its first report, 40 days earlier, put it on a skip list for good; the engine
    starts a new case for the new report."""
    old = Incident(start=T0 - dt.timedelta(days=40), tag="old").reported(0).crime(1)
    events = old.closed(2, "crime").events + Incident(tag="new").reported(1).events
    day = dict(period_start=T0, period_end=T0 + dt.timedelta(days=1), as_of=at(30))
    gathered, report = _report(tmp_path, book, events, **day)
    assert _rate(report) == (0, 1)
    assert "crime_not_recorded" in {f.finding for f in gathered.flags.values()}


def test_the_report_fires_deadlines_as_a_replay_does_whatever_the_period(
    tmp_path: Path, book: RuleBook
) -> None:
    """A skipped event dated later than the events after it did not move the clock, so
    another incident's flags differed from a replay's."""
    events = (
        Incident("INC-A", tag="a").reported(-1).updated(100).events
        + Incident("INC-B", tag="b").reported(1).crime(10).events
    )
    day = dict(period_start=T0, period_end=T0 + dt.timedelta(days=1))
    with_period, _ = _report(tmp_path, book, events, **day)
    without, _ = _report(tmp_path, book, events)
    assert {k: f.status for k, f in with_period.flags.items()} == {
        k: f.status for k, f in without.flags.items() if f.incident_id == "INC-B"
    }
    assert with_period.flags


def test_a_period_from_after_every_report_is_refused_too(tmp_path: Path, book: RuleBook) -> None:
    events = Incident().reported(0).events
    with pytest.raises(ValueError, match="no incident in the file is reported in the period"):
        _report(tmp_path, book, events, period_start=T0 + dt.timedelta(days=1))


def test_a_rape_record_cancelled_then_closed_as_n100_after_the_deadline_is_late(
    tmp_path: Path, book: RuleBook
) -> None:
    """As with an N100 record or a new rape crime after the deadline; the closure's time
    was never weighed when an earlier (cancelled) record existed."""
    inc = Incident().reported(0, disclosures=[("19C", "V1")]).crime(1, "19C").cancelled(2, "C4")
    _, report = _report(tmp_path, book, inc.closed(30, "n100", "not a crime").events)
    within = report.timeliness.overall.within_24h
    assert (within.numerator, within.denominator) == (0, 1)


def test_a_crime_cancelled_before_it_was_recorded_is_no_record_of_a_rape(
    tmp_path: Path, book: RuleBook
) -> None:
    inc = Incident().reported(0, disclosures=[("19C", "V1")])
    inc.cancelled(1, "C4").crime(2, "19C")  # the cancellation arrived dated first
    _, report = _report(tmp_path, book, inc.events, as_of=at(30))
    assert report.timeliness.overall.within_24h.denominator == 0


def test_flags_of_a_dropped_case_stay_out_of_the_new_cases_period(
    tmp_path: Path, book: RuleBook
) -> None:
    old = Incident(start=T0 - dt.timedelta(days=40), tag="old").reported(0)
    events = old.closed(1, "non_crime").events + Incident(tag="new").reported(1).crime(2).events
    day = dict(period_start=T0, period_end=T0 + dt.timedelta(days=1), as_of=at(30))
    gathered, report = _report(tmp_path, book, events, **day)
    assert _rate(report) == (1, 1)
    assert gathered.flags == {} and gathered.flags_outside_period == 1


def test_a_decision_at_the_moment_its_flag_is_raised_is_unmatched(
    tmp_path: Path, book: RuleBook
) -> None:
    """The engine applies a decision before what falls due at its time, so it refused
    this one; the report counted it as a rejection of a flag it showed open."""
    events = Incident().reported(0).events
    flag = flag_id("INC-1", "NCRS-NOT-RECORDED", "victim:V1")
    decisions = [_decision(flag, "INC-1", "rejected", at(24))]
    gathered, report = _report(tmp_path, book, events, decisions, as_of=at(30))
    assert gathered.flags[flag].status == "open"
    assert (report.decisions.decisions, report.decisions.unmatched) == (0, 1)
