"""The report against the simulator's ground truth.

The simulator knows, per incident, how many crimes were owed, how many ended covered by
a record of the right class, whether they were recorded within 24 hours and which
defect it planted. These tests generate streams with known defect rates and check that
the report's figures match that truth (within their confidence interval, and in fact
exactly, since both count the same subjects), and that its flags find every planted
defect of a kind the rules cover and nothing on clean incidents.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdi_stream.engine.outcomes import VIOLENCE_GROUPS
from cdi_stream.offences import load_offences
from cdi_stream.replay import replay
from cdi_stream.report.build import report_from
from cdi_stream.report.collect import Collected, collect
from cdi_stream.report.model import Proportion, Report
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import DefectRates, SimConfig, Truth, write_jsonl

# The finding each planted defect must raise, by ``Truth.defect`` (and, for unrecorded
# crimes, the way they were left unrecorded).
EXPECTED: dict[str, set[str]] = {
    "late": {"late_recording"},
    "misclassified": {"wrong_classification"},
    "undercounted": {"additional_crime_not_recorded"},
    "wrongly_cancelled": {"incorrect_cancellation"},
}
# Findings that are errors: none of them may appear on a clean incident.
ERRORS = {
    "crime_not_recorded",
    "rape_not_resolved",
    "cri_without_rationale",
    "late_recording",
    "wrong_classification",
    "additional_crime_not_recorded",
    "incorrect_cancellation",
    "unexplained_downgrade",
}


def expected_findings(t: Truth) -> set[str]:
    if t.defect == "unrecorded":
        found = {"rape_not_resolved" if t.category == "rape" else "crime_not_recorded"}
        if t.defect_detail == "closed_cri_without_rationale":
            found.add("cri_without_rationale")
        return found
    return EXPECTED.get(t.defect or "", set())


@dataclass
class Run:
    truths: list[Truth]
    gathered: Collected
    report: Report
    path: Path


def run(tmp: Path, book: RuleBook, config: SimConfig, **kwargs: object) -> Run:
    path = tmp / "events.jsonl"
    truths = write_jsonl(config, path)
    gathered = collect(path, book=book, **kwargs)  # type: ignore[arg-type]
    report = report_from(
        gathered, book=book, yearly_volume=100_000, sources=(str(path), None, None)
    )
    return Run(truths, gathered, report, path)


def truth_rate(truths: Iterable[Truth]) -> tuple[int, int]:
    covered = owed = 0
    for t in truths:
        covered += t.covered_subjects
        owed += t.recordable_subjects
    return covered, owed


def violent(t: Truth) -> bool:
    """The report's definition: the most serious disclosed offence is violence against
    the person (every subject of a simulated incident discloses the same principal)."""
    table = load_offences()
    code = table.most_serious(t.disclosed_codes)
    offence = table.get(code) if code else None
    return offence is not None and offence.group in VIOLENCE_GROUPS


def assert_matches(rate: Proportion, truths: list[Truth]) -> None:
    covered, owed = truth_rate(truths)
    assert owed > 0
    assert rate.ci95 is not None
    assert rate.ci95.low <= covered / owed <= rate.ci95.high
    assert (rate.numerator, rate.denominator) == (covered, owed)


@pytest.fixture(scope="module")
def unrecorded_violence(tmp_path_factory: pytest.TempPathFactory, book: RuleBook) -> Run:
    """20% of crimes unrecorded and 5% misclassified, nothing else wrong."""
    rates = DefectRates(
        unrecorded=0.20, late=0, misclassified=0.05, undercounted=0, wrongly_cancelled=0
    )
    config = SimConfig(seed=11, incidents=4000, defects=rates)
    return run(tmp_path_factory.mktemp("unrecorded"), book, config)


@pytest.fixture(scope="module")
def every_defect(tmp_path_factory: pytest.TempPathFactory, book: RuleBook) -> Run:
    """Every kind of defect at once, at rates high enough to give hundreds of each."""
    rates = DefectRates(
        unrecorded=0.15, late=0.08, misclassified=0.08, undercounted=0.08, wrongly_cancelled=0.06
    )
    config = SimConfig(seed=12, incidents=5000, defects=rates)
    return run(tmp_path_factory.mktemp("every"), book, config)


def test_recording_rate_matches_the_truth_overall_and_for_violence(
    unrecorded_violence: Run,
) -> None:
    report, truths = unrecorded_violence.report, unrecorded_violence.truths
    rate = report.recording_rate
    assert_matches(rate.overall, truths)
    by_category = {c.category: c.rate for c in rate.by_category}
    assert_matches(by_category["violence"], [t for t in truths if violent(t)])
    covered, owed = truth_rate(truths)
    assert 0.70 < covered / owed < 0.80  # 20% unrecorded and 5% misclassified, roughly


def test_category_rates_match_the_truth(every_defect: Run) -> None:
    truths = every_defect.truths
    by_category = {c.category: c.rate for c in every_defect.report.recording_rate.by_category}
    assert_matches(every_defect.report.recording_rate.overall, truths)
    assert_matches(by_category["violence"], [t for t in truths if violent(t)])
    assert_matches(by_category["sexual"], [t for t in truths if t.category in ("sexual", "rape")])
    assert_matches(by_category["rape"], [t for t in truths if t.category == "rape"])
    assert_matches(
        by_category["domestic_abuse"], [t for t in truths if t.category == "domestic_abuse"]
    )


def test_every_incident_is_counted_as_the_truth_counts_it(every_defect: Run) -> None:
    owed: dict[str, int] = defaultdict(int)
    correct: dict[str, int] = defaultdict(int)
    for s in every_defect.gathered.subjects:
        owed[s.incident_id] += s.owed
        correct[s.incident_id] += s.correct
    for t in every_defect.truths:
        assert (owed[t.incident_id], correct[t.incident_id]) == (
            t.recordable_subjects,
            t.covered_subjects,
        ), t


def test_unrecorded_estimate_applies_the_rate_to_the_yearly_volume(every_defect: Run) -> None:
    report = every_defect.report
    covered, owed = truth_rate(every_defect.truths)
    assert report.unrecorded.estimate == round(100_000 * (owed / covered - 1))


def _findings(gathered: Collected) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for flag in gathered.flags.values():
        found[flag.incident_id].add(flag.finding)
    return found


@pytest.mark.parametrize(
    "defect", ["unrecorded", "late", "misclassified", "undercounted", "wrongly_cancelled"]
)
def test_every_planted_defect_is_flagged(every_defect: Run, defect: str) -> None:
    """Recall 1.0 for each kind of defect the rules cover."""
    found = _findings(every_defect.gathered)
    planted = [t for t in every_defect.truths if t.defect == defect]
    assert len(planted) > 50
    missed = [t for t in planted if not expected_findings(t) <= found[t.incident_id]]
    assert missed == []


def test_clean_incidents_raise_no_error_flags(every_defect: Run) -> None:
    """Precision 1.0: a clean incident may get a deadline warning (recorded 12-24 hours
    after the report), never a finding of an error."""
    found = _findings(every_defect.gathered)
    clean = [t for t in every_defect.truths if t.defect is None]
    assert len(clean) > 1000
    wrongly = [(t, found[t.incident_id]) for t in clean if found[t.incident_id] & ERRORS]
    assert wrongly == []
    assert any("deadline_warning" in found[t.incident_id] for t in clean)


def test_each_finding_is_raised_only_where_a_defect_calls_for_it(every_defect: Run) -> None:
    """Per finding, the incidents it is raised on all carry a defect that explains it
    (a late recording was also not recorded at its deadline)."""
    allowed: dict[str | None, set[str]] = {
        None: set(),
        "unrecorded": {"crime_not_recorded", "rape_not_resolved", "cri_without_rationale"},
        "late": {
            "late_recording",
            "crime_not_recorded",
            "rape_not_resolved",
            "additional_crime_not_recorded",
        },
        "misclassified": {"wrong_classification"},
        "undercounted": {"additional_crime_not_recorded"},
        "wrongly_cancelled": {"incorrect_cancellation"},
    }
    found = _findings(every_defect.gathered)
    for t in every_defect.truths:
        assert found[t.incident_id] - {"deadline_warning"} <= allowed[t.defect], t


def test_timeliness_matches_the_truth(tmp_path: Path, book: RuleBook) -> None:
    """With only late recordings planted every subject is recorded, so the share within
    24 hours per subject follows from the truth per incident."""
    rates = DefectRates(
        unrecorded=0, late=0.2, misclassified=0, undercounted=0, wrongly_cancelled=0
    )
    result = run(tmp_path, book, SimConfig(seed=13, incidents=3000, defects=rates))
    within = sum(t.recordable_subjects for t in result.truths if t.recorded_within_24h)
    recorded = sum(t.recordable_subjects for t in result.truths)
    share = result.report.timeliness.overall.within_24h
    assert share.ci95 is not None
    assert share.ci95.low <= within / recorded <= share.ci95.high
    assert (share.numerator, share.denominator) == (within, recorded)
    late = sum(result.report.timeliness.histogram[i].counts["all"] for i in range(24, 28))
    assert late == recorded - within


def test_a_period_counts_only_the_incidents_reported_in_it(tmp_path: Path, book: RuleBook) -> None:
    config = SimConfig(seed=14, incidents=3000)
    start = config.start + dt.timedelta(hours=12)
    end = start + dt.timedelta(hours=24)
    result = run(tmp_path, book, config, period_start=start, period_end=end)
    inside = [t for t in result.truths if start <= t.reported_at < end]
    assert 0 < len(inside) < len(result.truths)
    assert result.report.inputs.incidents == len(inside)
    assert result.report.inputs.outside_period > 0
    assert_matches(result.report.recording_rate.overall, inside)
    assert {f.incident_id for f in result.gathered.flags.values()} <= {
        t.incident_id for t in inside
    }
    assert result.report.period_start == start and result.report.period_end == end
    assert result.report.evaluated_at >= end + dt.timedelta(hours=24)


def test_a_flag_file_from_replay_gives_the_same_flag_figures(
    every_defect: Run, book: RuleBook, tmp_path: Path
) -> None:
    flags = tmp_path / "flags.jsonl"
    until = every_defect.report.evaluated_at
    with every_defect.path.open("rb") as events, flags.open("wb") as out:
        replay(events, book, out=out, until=until)
    from_file = collect(every_defect.path, book=book, flags_path=flags)
    assert from_file.flag_source == "file"
    assert {k: (f.status, f.priority) for k, f in from_file.flags.items()} == {
        k: (f.status, f.priority) for k, f in every_defect.gathered.flags.items()
    }


def test_decisions_are_applied_and_counted_per_rule(
    every_defect: Run, book: RuleBook, tmp_path: Path
) -> None:
    """A rejected flag is withdrawn for good; precision per rule follows the decisions."""
    from cdi_stream.contract import DdmDecision

    open_flags = sorted(
        (
            f
            for f in every_defect.gathered.flags.values()
            if f.status == "open" and f.finding == "crime_not_recorded"
        ),
        key=lambda f: f.flag_id,
    )[:30]
    lines = io.StringIO()
    for i, f in enumerate(open_flags):
        decision = DdmDecision(
            decision_id=f"D-{i}",
            flag_id=f.flag_id,
            incident_id=f.incident_id,
            decision="rejected" if i < 10 else "upheld",
            reason="checked",
            decided_at=dt.datetime.fromtimestamp(f.first_seen + 7200, dt.UTC),
            ddm_ref="DDM-1",
        )
        lines.write(decision.model_dump_json() + "\n")
    lines.write(
        '{"decision_id": "D-x", "flag_id": "flag-unknown", "incident_id": "INC-x", '
        '"decision": "upheld", "reason": "r", "decided_at": "2026-01-06T00:00:00Z", '
        '"ddm_ref": "DDM-1"}\n'
    )
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text(lines.getvalue() + "not a decision\n")
    gathered = collect(every_defect.path, book=book, decisions_path=decisions)
    report = report_from(gathered, book=book, yearly_volume=None, sources=("e", None, "d"))
    statuses = [gathered.flags[f.flag_id].status for f in open_flags]
    assert statuses[:10] == ["withdrawn"] * 10
    assert statuses[10:] == ["open"] * 20
    row = next(r for r in report.decisions.rows if r.finding == "crime_not_recorded")
    assert (row.upheld, row.rejected) == (20, 10)
    assert row.precision.value == pytest.approx(2 / 3)
    assert row.median_hours_to_decision == pytest.approx(2.0)
    assert (report.decisions.decisions, report.decisions.unmatched) == (30, 1)
    assert report.inputs.decision_lines_rejected == 1


def test_cases_dropped_at_the_end_of_retention_are_still_counted(
    unrecorded_violence: Run, book: RuleBook
) -> None:
    """A period longer than the retention (here shortened to 12 hours) still counts
    every incident: the engine drops closed cases, the report keeps them."""
    from cdi_stream.engine import EngineConfig

    short = collect(unrecorded_violence.path, book=book, config=EngineConfig(retention=12 * 3600))
    full = unrecorded_violence.gathered
    assert short.incidents == full.incidents
    assert sorted(short.subjects, key=str) == sorted(full.subjects, key=str)


def test_a_file_that_ends_early_leaves_crimes_pending_not_unrecorded(
    every_defect: Run, book: RuleBook, tmp_path: Path
) -> None:
    """An extract cut before every deadline of its period has passed says nothing about
    what happened after: crimes not yet due are pending, and the rate among the crimes
    that were due is what the full file says of them."""
    import json

    lines = every_defect.path.read_bytes().splitlines(keepends=True)
    times = [json.loads(line)["occurred_at"] for line in lines]
    cut_at = sorted(times)[len(times) // 2]
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(line for line, t in zip(lines, times, strict=True) if t <= cut_at))
    end = dt.datetime.fromisoformat(cut_at.replace("Z", "+00:00"))
    early = collect(cut, book=book, period_end=end)
    report = report_from(early, book=book, yearly_volume=None, sources=("cut", None, None))
    assert not report.complete and report.recording_rate.pending > 0
    assert report.evaluated_at == end  # the last event, not a day later
    full = {
        (s.incident_id, s.subject): s
        for s in collect(every_defect.path, book=book, period_end=end).subjects
    }
    unrecorded = [s for s in early.subjects if s.owed and not s.covered]
    assert unrecorded
    for s in unrecorded:  # due before the cut and not recorded by then: never in time
        later = full[(s.incident_id, s.subject)]
        assert later.owed and (not later.covered or later.late), s
    # Told that the file was extracted a day after the period, nothing is pending.
    extracted = collect(cut, book=book, period_end=end, as_of=end + dt.timedelta(hours=25))
    final = report_from(extracted, book=book, yearly_volume=None, sources=("cut", None, None))
    assert final.complete and final.recording_rate.pending == 0


def test_a_report_with_crimes_pending_is_not_final_even_after_the_period_deadline(
    every_defect: Run,
) -> None:
    """A victim who discloses days after the report has a deadline past the period's:
    counted before it, the report is not final, whatever the time."""
    report = every_defect.report
    assert report.evaluated_at >= report.complete_at and report.complete
    pending = report.recording_rate.model_copy(update={"pending": 1})
    assert not report.model_copy(update={"recording_rate": pending}).complete
