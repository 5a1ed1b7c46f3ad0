"""Each figure computed from a handful of hand-made outcomes, flags and decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cdi_stream.contract import DdmDecision
from cdi_stream.engine.outcomes import CancellationOutcome, SubjectOutcome
from cdi_stream.report import figures
from cdi_stream.report.inputs import FlagFold, FlagState

HOUR = 3600.0
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC).timestamp()
LONDON = ZoneInfo("Europe/London")
EDITIONS = ["2023-05"]


def subject(**changes: Any) -> SubjectOutcome:
    """A victim recorded correctly two hours after a report at T0, unless told."""
    base = SubjectOutcome(
        incident_id="INC-1",
        subject="victim:V-1",
        victim_ref="V-1",
        edition="2023-05",
        reported_at=T0,
        clock_start=T0,
        due_at=T0 + 24 * HOUR,
        recordable=True,
        rape=False,
        covered=True,
        correctly_classified=True,
        complete=True,
        discharged=False,
        validly_cancelled=False,
        pending=False,
        late=False,
        discharged_at_due=False,
        first_recorded_at=T0 + 2 * HOUR,
        principal_code="105A",
        categories=frozenset({"violence"}),
    )
    return dataclasses.replace(base, **changes)


UNRECORDED = {"covered": False, "first_recorded_at": None}


def test_recording_rate_counts_what_is_owed_and_what_is_correct() -> None:
    subjects = [
        subject(),
        subject(**UNRECORDED),
        subject(correctly_classified=False),
        subject(complete=False),
        subject(late=True, first_recorded_at=T0 + 30 * HOUR),  # late still counts
        subject(recordable=False, covered=False, due_at=None, first_recorded_at=None),
        subject(pending=True, **UNRECORDED),
        subject(discharged=True, **UNRECORDED),
        subject(validly_cancelled=True, covered=False),
        subject(discharged=True),  # covered and discharged: owed and correct
    ]
    fig = figures.recording_rate(subjects, evaluated="now", fallback_editions=EDITIONS)
    assert (fig.overall.numerator, fig.overall.denominator) == (3, 6)
    assert fig.overall.value == pytest.approx(0.5)
    assert fig.overall.ci95 is not None and fig.overall.ci95.low < 0.5 < fig.overall.ci95.high
    assert (fig.not_recorded, fig.wrong_class, fig.incomplete) == (1, 1, 1)
    assert (fig.not_recordable, fig.pending, fig.discharged, fig.validly_cancelled) == (1, 1, 1, 1)
    assert fig.editions == ["2023-05"]
    assert "Wilson" in fig.method


def test_categories_are_rated_separately_and_may_overlap() -> None:
    rape = frozenset({"sexual", "rape"})
    subjects = [
        subject(categories=frozenset({"violence", "domestic_abuse"})),
        subject(categories=frozenset({"domestic_abuse"}), **UNRECORDED),
        subject(categories=rape),
        subject(categories=rape, **UNRECORDED),
        subject(categories=frozenset()),
    ]
    fig = figures.recording_rate(subjects, evaluated="now", fallback_editions=EDITIONS)
    rates = {c.category: (c.rate.numerator, c.rate.denominator) for c in fig.by_category}
    assert rates == {"violence": (1, 1), "sexual": (1, 2), "rape": (1, 2), "domestic_abuse": (1, 2)}
    assert (fig.overall.numerator, fig.overall.denominator) == (3, 5)


def test_an_empty_population_has_no_rate_but_still_names_an_edition() -> None:
    fig = figures.recording_rate([], evaluated="now", fallback_editions=EDITIONS)
    assert fig.overall.value is None and fig.overall.ci95 is None
    assert fig.editions == EDITIONS
    estimate = figures.unrecorded(fig.overall, 50_000, editions=fig.editions)
    assert estimate.estimate is None and "no rate" in estimate.method.lower()


def test_unrecorded_estimate_and_its_range_use_the_interval_ends_swapped() -> None:
    rate = figures.proportion(758, 1000)
    fig = figures.unrecorded(rate, 66_400, editions=EDITIONS)
    assert fig.estimate == round(66_400 * (1 / 0.758 - 1))
    assert rate.ci95 is not None
    assert fig.low == round(66_400 * (1 / rate.ci95.high - 1))
    assert fig.high == round(66_400 * (1 / rate.ci95.low - 1))
    assert fig.low is not None and fig.high is not None
    assert fig.low < fig.estimate < fig.high
    assert "66,400" in fig.method
    missing = figures.unrecorded(rate, None, editions=EDITIONS)
    assert missing.estimate is None and "No yearly" in missing.method


def test_timeliness_share_and_histogram_bins() -> None:
    subjects = [
        subject(first_recorded_at=T0 - HOUR),  # before the clock: 0 hours
        subject(first_recorded_at=T0 + 0.5 * HOUR),
        subject(first_recorded_at=T0 + 24 * HOUR),  # exactly at the deadline: in time
        subject(first_recorded_at=T0 + 24.5 * HOUR, late=True),
        subject(first_recorded_at=T0 + 200 * HOUR, late=True),
        subject(**UNRECORDED),  # never recorded: not in the timeliness figures
    ]
    fig = figures.timeliness(subjects, deadline_hours=24.0, fallback_editions=EDITIONS)
    share = fig.overall.within_24h
    assert (share.numerator, share.denominator) == (3, 5)
    counts = {b.label: b.counts["all"] for b in fig.histogram}
    assert counts["0-1 h"] == 2
    assert counts["23-24 h"] == 1
    assert counts["24-48 h"] == 1
    assert counts["over 7 days"] == 1
    assert sum(counts.values()) == 5
    assert fig.overall.median_hours == pytest.approx(24.0)
    assert fig.title == "Recorded within 24 hours"


def test_a_record_cancelled_and_made_again_after_the_deadline_is_late() -> None:
    again = subject(first_recorded_at=T0 + HOUR, late=True)
    assert again.recorded and not again.in_time


def test_weeks_are_iso_weeks_in_london_time() -> None:
    # 23:30 UTC on Sunday 29 March 2026 is 00:30 on Monday in British Summer Time.
    summer = dt.datetime(2026, 3, 29, 23, 30, tzinfo=dt.UTC).timestamp()
    assert figures.week_start(summer, LONDON) == dt.date(2026, 3, 30)
    winter = dt.datetime(2026, 1, 11, 23, 30, tzinfo=dt.UTC).timestamp()
    assert figures.week_start(winter, LONDON) == dt.date(2026, 1, 5)


def test_weekly_trend_covers_every_week_of_the_period_and_marks_partial_ones() -> None:
    start = dt.datetime(2026, 1, 7, tzinfo=dt.UTC)  # a Wednesday
    end = dt.datetime(2026, 1, 26, tzinfo=dt.UTC)  # a Monday: the last week is whole
    subjects = [
        subject(reported_at=dt.datetime(2026, 1, 8, tzinfo=dt.UTC).timestamp()),
        subject(reported_at=dt.datetime(2026, 1, 20, tzinfo=dt.UTC).timestamp(), **UNRECORDED),
    ]
    fig = figures.weekly_trend(
        subjects, period_start=start, period_end=end, zone=LONDON, fallback_editions=EDITIONS
    )
    assert [(w.week, w.partial, w.owed) for w in fig.weeks] == [
        ("2026-W02", True, 1),
        ("2026-W03", False, 0),
        ("2026-W04", False, 1),
    ]
    assert fig.weeks[0].recording_rate.value == 1.0
    assert fig.weeks[1].recording_rate.value is None
    assert fig.weeks[2].recording_rate.value == 0.0


def _flag(flag_id: str, finding: str, priority: str, status: str, **kw: Any) -> FlagState:
    fields: dict[str, Any] = {
        "flag_id": flag_id,
        "incident_id": "INC-1",
        "rule_id": finding.upper(),
        "finding": finding,
        "priority": priority,
        "status": status,
        "edition": "2023-05",
        "revision": 1,
        "first_revision": 1,
        "first_seen": T0,
    }
    fields.update(kw)
    return FlagState(**fields)


def test_flag_counts_by_finding_priority_and_status() -> None:
    flags = [
        _flag("f1", "crime_not_recorded", "P1", "open"),
        _flag("f2", "crime_not_recorded", "P1", "resolved"),
        _flag("f3", "crime_not_recorded", "P2", "open"),
        _flag("f4", "late_recording", "P3", "resolved"),
        _flag("f5", "deadline_warning", "P3", "withdrawn"),
    ]
    fig = figures.flag_counts(
        flags, source="replay", outside_period=2, evaluated="now", fallback_editions=[]
    )
    rows = {(r.finding, r.priority): (r.open, r.resolved, r.withdrawn) for r in fig.rows}
    assert rows == {
        ("deadline_warning", "P3"): (0, 0, 1),
        ("crime_not_recorded", "P1"): (1, 1, 0),
        ("crime_not_recorded", "P2"): (1, 0, 0),
        ("late_recording", "P3"): (0, 1, 0),
    }
    assert (fig.open, fig.resolved, fig.withdrawn, fig.outside_period) == (2, 2, 1, 2)
    assert fig.editions == ["2023-05"]


def test_the_latest_revision_of_a_flag_wins_whatever_the_order() -> None:
    from cdi_stream.contract import FlagChange

    def change(revision: int, status: str, at: float) -> FlagChange:
        moment = dt.datetime.fromtimestamp(at, dt.UTC)
        return FlagChange(
            flag_id="flag-1",
            revision=revision,
            status=status,  # type: ignore[arg-type]
            finding="crime_not_recorded",
            rule_id="NCRS-NOT-RECORDED",
            rule_title="Crime not recorded",
            reference="NCRS",
            edition="2023-05",
            priority="P2",
            incident_id="INC-1",
            event_time=moment,
            emitted_at=moment,
            explanation="x",
        )

    fold = FlagFold()
    fold.extend([change(2, "resolved", T0 + HOUR), change(1, "open", T0)])
    state = fold.flags["flag-1"]
    assert (state.status, state.revision, state.first_seen) == ("resolved", 2, T0)


def _decision(flag_id: str, verdict: str, hours: float, n: int = 1) -> DdmDecision:
    return DdmDecision(
        decision_id=f"D-{flag_id}-{n}",
        flag_id=flag_id,
        incident_id="INC-1",
        decision=verdict,  # type: ignore[arg-type]
        reason="checked",
        decided_at=dt.datetime.fromtimestamp(T0 + hours * HOUR, dt.UTC),
        ddm_ref="DDM-1",
    )


def test_decisions_per_rule_give_precision_and_time_to_decision() -> None:
    flags = {
        f.flag_id: f
        for f in (
            _flag("f1", "crime_not_recorded", "P1", "open"),
            _flag("f2", "crime_not_recorded", "P1", "open"),
            _flag("f3", "crime_not_recorded", "P1", "withdrawn"),
            _flag("f4", "wrong_classification", "P3", "open"),
        )
    }
    decisions = [
        _decision("f1", "upheld", 2),
        _decision("f2", "upheld", 4),
        _decision("f3", "upheld", 1),
        _decision("f3", "rejected", 6, n=2),  # the later decision stands
        _decision("elsewhere", "upheld", 1),
    ]
    fig = figures.decisions_figure(flags, decisions, fallback_editions=[])
    rows = {r.rule_id: r for r in fig.rows}
    cnr = rows["CRIME_NOT_RECORDED"]
    assert (cnr.flags, cnr.upheld, cnr.rejected) == (3, 2, 1)
    assert cnr.precision.value == pytest.approx(2 / 3)
    assert cnr.median_hours_to_decision == pytest.approx(4.0)
    wrong = rows["WRONG_CLASSIFICATION"]
    assert (wrong.flags, wrong.upheld, wrong.rejected) == (1, 0, 0)
    assert wrong.precision.value is None
    assert (fig.decisions, fig.unmatched, fig.supplied) == (3, 1, True)  # matched, unmatched
    none = figures.decisions_figure(flags, None, fallback_editions=EDITIONS)
    assert not none.supplied and none.rows == [] and "No decisions file" in none.method


def test_cancellation_checks_count_incorrect_ones_and_their_problems() -> None:
    def cancellation(incorrect: bool, *problems: str) -> CancellationOutcome:
        return CancellationOutcome("INC-1", "CR-1", "2023-05", T0, incorrect, problems)

    fig = figures.cancellation_checks(
        [
            cancellation(False),
            cancellation(True, "invalid_reason"),
            cancellation(True, "c2_without_avi", "victim_not_informed"),
        ],
        fallback_editions=[],
    )
    assert (fig.checked, fig.incorrect) == (3, 2)
    assert fig.share_incorrect.value == pytest.approx(2 / 3)
    assert fig.by_problem == {
        "invalid_reason": 1,
        "c2_without_avi": 1,
        "unauthorised": 0,
        "victim_not_informed": 1,
    }
