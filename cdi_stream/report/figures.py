"""The report's figures, computed from subject outcomes, flags and decisions.

Pure functions over plain data: nothing here replays events or reads files, so each
figure can be checked on a handful of hand-made outcomes. Each figure is returned with
the sentence that defines it, written here beside the code that computes it so the
two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Final, get_args
from zoneinfo import ZoneInfo

from cdi_stream.contract import DdmDecision, Finding
from cdi_stream.engine.outcomes import CATEGORIES, CancellationOutcome, SubjectOutcome
from cdi_stream.report.inputs import FlagState, latest_decisions
from cdi_stream.report.model import (
    CancellationChecks,
    CategoryRate,
    CategoryTimeliness,
    Decisions,
    FlagCounts,
    FlagRow,
    HistogramBin,
    Interval,
    Proportion,
    RecordingRate,
    RuleDecisions,
    Timeliness,
    UnrecordedEstimate,
    WeeklyTrend,
    WeekRow,
)
from cdi_stream.report.stats import quantile, unrecorded_estimate, wilson_interval

ALL: Final = "all"
LABELS: Final = {
    ALL: "All crimes",
    "violence": "Violence against the person",
    "sexual": "Sexual offences",
    "rape": "Rape",
    "domestic_abuse": "Domestic abuse",
}
FINDINGS: Final[tuple[str, ...]] = get_args(Finding)
PRIORITIES: Final = ("P1", "P2", "P3")
CANCELLATION_PROBLEMS: Final = (
    "invalid_reason",
    "c2_without_avi",
    "unauthorised",
    "victim_not_informed",
)

# Hours from clock start to first record: hourly up to the deadline, then wider.
_HOURLY_EDGES: Final = tuple(float(h) for h in range(25))
_LATE_EDGES: Final = (24.0, 48.0, 72.0, 168.0)


def proportion(numerator: int, denominator: int) -> Proportion:
    """A proportion with its Wilson 95% interval (none for 0 of 0)."""
    interval = wilson_interval(numerator, denominator)
    if interval is None:
        return Proportion(numerator=numerator, denominator=denominator)
    return Proportion(
        numerator=numerator,
        denominator=denominator,
        value=numerator / denominator,
        ci95=Interval(low=interval[0], high=interval[1]),
    )


def editions_of(items: Iterable[str], fallback: Sequence[str]) -> list[str]:
    """The editions a figure's population was judged by; those in force over the
    period when the population is empty, so every figure still names one."""
    found = sorted(set(items))
    return found or list(fallback)


# --- recording rate ------------------------------------------------------------------


def recording_rate(
    subjects: Sequence[SubjectOutcome], *, evaluated: str, fallback_editions: Sequence[str]
) -> RecordingRate:
    owed = [s for s in subjects if s.owed]
    by_category = [
        CategoryRate(
            category=c,
            label=LABELS[c],
            rate=_rate([s for s in owed if c in s.categories]),
        )
        for c in CATEGORIES
    ]
    recordable = [s for s in subjects if s.recordable]
    uncovered = [s for s in recordable if not s.covered and not s.pending]
    return RecordingRate(
        title="Crime recording rate",
        method=(
            "A subject is one crime owed, counted as the rules engine counts them: each "
            "victim with an offence disclosed on the balance of probability (no credible "
            "evidence to the contrary), or each state-based offence (one crime per victim; "
            "the Principal Crime Rule gives one crime for several offences against the "
            "same victim). A subject is owed once its 24-hour deadline has passed, a "
            "record covers it, or a closure decided 'no crime' while nothing covered it, "
            "unless a closure ended the obligation (transferred, "
            "duplicate, a crime-related incident with a rationale) or every record of it "
            "was cancelled on grounds the cancellation rule accepts (the engine still "
            "raises crime_not_recorded at the deadline for a valid cancellation made "
            "before it, for a DDM to confirm; here it is not counted as owed). Rate = "
            "subjects "
            "covered by a correct crime record at "
            f"{evaluated} / subjects owed, over the incidents reported in the period. "
            "Correct: a crime stands for the victim (for rape a rape crime, 19C-19K, or an "
            "N100 with a rationale, which the rules accept in its place, so it counts in "
            "both the numerator and the denominator) and the victim's record has no "
            "classification gap "
            "(principal crime, injury, hate aggravation, former-partner stalking); in the "
            "2018-2023 edition a conduct crime or other offence owed in addition must "
            "stand too. A late record counts as recorded. Violence against the person and "
            "sexual offences are chosen by the Home Office offence group of the subject's "
            "most serious disclosed offence, rape by a rape disclosure or the rape "
            "qualifier, domestic abuse by the incident's domestic_abuse qualifier; a "
            "subject may be in several categories. 95% confidence interval: Wilson score "
            "interval, as if the subjects were a random sample of the force's crimes."
        ),
        editions=editions_of((s.edition for s in owed), fallback_editions),
        overall=_rate(owed),
        by_category=by_category,
        not_recordable=sum(1 for s in subjects if not s.recordable),
        pending=sum(1 for s in recordable if s.pending),
        discharged=sum(1 for s in uncovered if s.discharged),
        validly_cancelled=sum(1 for s in uncovered if s.validly_cancelled and not s.discharged),
        not_recorded=sum(1 for s in owed if not s.covered),
        wrong_class=sum(1 for s in owed if s.covered and not s.correctly_classified),
        incomplete=sum(1 for s in owed if s.covered and s.correctly_classified and not s.complete),
    )


def _rate(owed: Sequence[SubjectOutcome]) -> Proportion:
    return proportion(sum(1 for s in owed if s.correct), len(owed))


# --- unrecorded crime estimate ---------------------------------------------------------


def unrecorded(
    rate: Proportion, yearly_volume: int | None, *, editions: Sequence[str]
) -> UnrecordedEstimate:
    formula = "unrecorded per year = V x (1 / r - 1)"
    method = (
        "HMICFRS applies the recording rate to twelve months of recorded crime (excluding "
        "fraud). If V crimes were recorded in a year and they are the share r of the crimes "
        "that should have been recorded, V / r were owed and V x (1 / r - 1) went "
        "unrecorded. r is the overall recording rate above; the range applies the same "
        "formula to the ends of its 95% confidence interval. "
    )
    if yearly_volume is None or rate.value is None:
        why = (
            "No yearly recorded-crime volume was given, so no estimate is made."
            if yearly_volume is None
            else "No crime was owed in the period, so there is no rate to apply."
        )
        return UnrecordedEstimate(
            title="Estimated unrecorded crimes per year",
            method=method + why,
            editions=list(editions),
            yearly_volume=yearly_volume,
            rate=rate.value,
            estimate=None,
            low=None,
            high=None,
            formula=formula,
        )
    assert rate.ci95 is not None
    estimate = unrecorded_estimate(yearly_volume, rate.value)
    # A higher rate means fewer unrecorded: the interval's ends swap.
    low = unrecorded_estimate(yearly_volume, rate.ci95.high)
    high = unrecorded_estimate(yearly_volume, rate.ci95.low)
    return UnrecordedEstimate(
        title="Estimated unrecorded crimes per year",
        method=method
        + f"V = {yearly_volume:,} is a parameter given to this report, not counted from "
        "the events.",
        editions=list(editions),
        yearly_volume=yearly_volume,
        rate=rate.value,
        estimate=_round(estimate),
        low=_round(low),
        high=_round(high),
        formula=formula,
    )


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


# --- timeliness ------------------------------------------------------------------------


def timeliness(
    subjects: Sequence[SubjectOutcome], *, deadline_hours: float, fallback_editions: Sequence[str]
) -> Timeliness:
    recorded = [s for s in subjects if s.recorded]
    groups: dict[str, list[SubjectOutcome]] = {ALL: recorded}
    for c in CATEGORIES:
        groups[c] = [s for s in recorded if c in s.categories]
    hours = {name: [h for s in group if (h := s.hours_to_record) is not None]
             for name, group in groups.items()}  # fmt: skip
    rows = {name: _timely(name, groups[name], sorted(hours[name])) for name in groups}
    deadline = f"{deadline_hours:g}"
    return Timeliness(
        title=f"Recorded within {deadline} hours",
        method=(
            "Of the subjects recorded at all (a crime of any class, however late; for rape "
            "also an N100 with a rationale), the share first recorded at or before the "
            f"deadline: {deadline} hours after the subject's clock started (the report, or "
            "a later first disclosure of the offence). A record cancelled before the "
            "deadline and made again after it is late; one first made after the deadline "
            "counts as in time only where a closure that ended the obligation (a transfer, "
            "a duplicate, a CRI with a rationale; for rape also an N100 with a rationale) "
            "stood at the deadline. A rape recorded "
            "under another class first counts from that record (the engine's "
            "late_recording flag judges the rape record itself). The histogram counts hours "
            "from clock start to the first record; a record made before the clock started "
            "counts as 0 hours. Median and 90th "
            "percentile by linear interpolation; the 95% interval is Wilson's."
        ),
        editions=editions_of((s.edition for s in recorded), fallback_editions),
        overall=rows[ALL],
        by_category=[rows[c] for c in CATEGORIES],
        histogram=_histogram(hours),
    )


def _timely(
    name: str, group: Sequence[SubjectOutcome], hours: Sequence[float]
) -> CategoryTimeliness:
    return CategoryTimeliness(
        category=name,
        label=LABELS[name],
        within_24h=proportion(sum(1 for s in group if s.in_time), len(group)),
        median_hours=_hours(quantile(hours, 0.5)),
        p90_hours=_hours(quantile(hours, 0.9)),
    )


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _histogram(hours: dict[str, list[float]]) -> list[HistogramBin]:
    """Hourly bins to 24 hours, then 24-48 h, 48-72 h, 3-7 days and over a week.

    The bins are fixed whatever the configured deadline: they are for reading, and the
    in-time share is computed exactly, not from them."""
    edges: list[tuple[float, float | None]] = list(itertools.pairwise(_HOURLY_EDGES))
    edges += list(itertools.pairwise(_LATE_EDGES))
    edges.append((_LATE_EDGES[-1], None))
    counts: list[dict[str, int]] = [dict.fromkeys(hours, 0) for _ in edges]
    for name, values in hours.items():
        for h in values:
            counts[_bin(h)][name] += 1
    return [
        HistogramBin(label=_bin_label(low, high), low_hours=low, high_hours=high, counts=c)
        for (low, high), c in zip(edges, counts, strict=True)
    ]


def _bin(h: float) -> int:
    """Bins are (low, high]: a record at exactly 24 hours is in time and in the 23-24
    bin; 0 hours (or before the clock) falls in the first bin."""
    if h <= 24.0:
        return max(0, int(-(-h // 1)) - 1)
    for i, high in enumerate(_LATE_EDGES[1:]):
        if h <= high:
            return 24 + i
    return 24 + len(_LATE_EDGES) - 1


def _bin_label(low: float, high: float | None) -> str:
    if high is None:
        return f"over {low / 24:g} days"
    if low >= 72:
        return f"{low / 24:g}-{high / 24:g} days"
    return f"{low:g}-{high:g} h"


# --- flags -------------------------------------------------------------------------------


def flag_counts(
    flags: Iterable[FlagState],
    *,
    source: str,
    outside_period: int,
    evaluated: str,
    fallback_editions: Sequence[str],
) -> FlagCounts:
    cells: Counter[tuple[str, str, str]] = Counter()
    editions: set[str] = set()
    for f in flags:
        cells[(f.finding, f.priority, f.status)] += 1
        editions.add(f.edition)
    rows = [
        FlagRow(
            finding=finding,
            priority=p,
            open=cells[(finding, p, "open")],
            resolved=cells[(finding, p, "resolved")],
            withdrawn=cells[(finding, p, "withdrawn")],
        )
        for finding in FINDINGS
        for p in PRIORITIES
        if any(cells[(finding, p, s)] for s in ("open", "resolved", "withdrawn"))
    ]
    where = (
        f"as the rules engine raised them when this report replayed the events up to {evaluated}"
        if source == "replay"
        else "from the flag file supplied (latest revision per flag_id)"
    )
    return FlagCounts(
        title="Flags by finding and priority",
        method=(
            f"Every flag on an incident reported in the period, {where}; one count per flag "
            "at its latest revision and its latest priority. Open: waiting for a DDM or a "
            "corrected record. Resolved: the record was put right (a late recording is "
            "raised as resolved: it counts, but cannot be undone). Withdrawn: a later "
            "event showed it was not needed, or a DDM rejected it. Deadline warnings are "
            "early notices, not errors."
        ),
        editions=editions_of(editions, fallback_editions),
        source="replay" if source == "replay" else "file",
        rows=rows,
        open=sum(r.open for r in rows),
        resolved=sum(r.resolved for r in rows),
        withdrawn=sum(r.withdrawn for r in rows),
        outside_period=outside_period,
    )


# --- cancellations ---------------------------------------------------------------------


def cancellation_checks(
    cancellations: Sequence[CancellationOutcome], *, fallback_editions: Sequence[str]
) -> CancellationChecks:
    problems: Counter[str] = Counter(p for c in cancellations for p in c.problems)
    incorrect = sum(1 for c in cancellations if c.incorrect)
    return CancellationChecks(
        title="Cancellations checked",
        method=(
            "Every cancellation of a crime on the period's incidents, checked by the "
            "cancellation rule: incorrect if the reason is not one of C1-C5, if C2 is used "
            "without additional verifiable information, if a violence, sexual or robbery "
            "crime was cancelled on the authority of anyone but a DDM or the FCR, or if "
            "the victim is recorded as not informed. One cancellation may have several "
            "problems. The 95% interval is Wilson's."
        ),
        editions=editions_of((c.edition for c in cancellations), fallback_editions),
        checked=len(cancellations),
        incorrect=incorrect,
        share_incorrect=proportion(incorrect, len(cancellations)),
        by_problem={p: problems[p] for p in CANCELLATION_PROBLEMS},
    )


# --- DDM decisions -----------------------------------------------------------------------


def decisions_figure(
    flags: dict[str, FlagState],
    decisions: Sequence[DdmDecision] | None,
    *,
    fallback_editions: Sequence[str],
) -> Decisions:
    method = (
        "DDM decisions joined to the period's flags by flag_id and incident_id; the "
        "latest decision on a flag counts, except that a rejection is final, as in the "
        "engine. Upheld: the flag was right; rejected: it was wrong. Precision of a "
        "rule = upheld / (upheld + rejected), with a Wilson 95% interval. Time to decision "
        "= decision time - the time the flag was first published (its earliest revision's "
        "emitted_at; in a replay, the event time at which it was raised). Decisions on "
        "flags not found among the period's flags, or dated before the flag was first "
        "published, are counted as unmatched. "
    )
    raised: Counter[tuple[str, str]] = Counter((f.rule_id, f.finding) for f in flags.values())
    if decisions is None:
        return Decisions(
            title="DDM decisions per rule",
            method=method + "No decisions file was given, so no decision is counted.",
            editions=editions_of((f.edition for f in flags.values()), fallback_editions),
            supplied=False,
            decisions=0,
            unmatched=0,
            rows=[],
        )
    verdicts: dict[tuple[str, str], list[str]] = defaultdict(list)
    waits: dict[tuple[str, str], list[float]] = defaultdict(list)
    editions: set[str] = set()
    unmatched = 0
    valid: list[DdmDecision] = []
    for decision in decisions:
        flag = flags.get(decision.flag_id)
        # A decision dated before its flag was published cannot be a verdict on it, nor
        # one naming another incident (the engine refuses it as an unknown flag); left
        # out before the verdict is chosen, so it never hides a valid one.
        if (
            flag is None
            or flag.incident_id != decision.incident_id
            # At the very moment it was raised, too: the engine applies a decision
            # before what falls due at its time, so the flag was not there yet.
            or decision.decided_at.timestamp() <= flag.first_seen
        ):
            unmatched += 1
        else:
            valid.append(decision)
    standing = latest_decisions(valid)
    for flag_id, decision in standing.items():
        flag = flags[flag_id]
        key = (flag.rule_id, flag.finding)
        verdicts[key].append(decision.decision)
        waits[key].append((decision.decided_at.timestamp() - flag.first_seen) / 3600.0)
        editions.add(flag.edition)
    rows = []
    for key in sorted(set(verdicts) | set(raised)):
        upheld = verdicts[key].count("upheld")
        rejected = verdicts[key].count("rejected")
        rows.append(
            RuleDecisions(
                rule_id=key[0],
                finding=key[1],
                flags=raised[key],
                upheld=upheld,
                rejected=rejected,
                precision=proportion(upheld, upheld + rejected),
                median_hours_to_decision=_hours(quantile(sorted(waits[key]), 0.5)),
            )
        )
    return Decisions(
        title="DDM decisions per rule",
        method=method,
        editions=editions_of(editions, fallback_editions),
        supplied=True,
        decisions=len(standing),
        unmatched=unmatched,
        rows=rows,
    )


# --- weekly trend ----------------------------------------------------------------------


def weekly_trend(
    subjects: Sequence[SubjectOutcome],
    *,
    period_start: dt.datetime,
    period_end: dt.datetime,
    zone: ZoneInfo,
    fallback_editions: Sequence[str],
) -> WeeklyTrend:
    weeks: dict[dt.date, list[SubjectOutcome]] = defaultdict(list)
    for s in subjects:
        weeks[week_start(s.reported_at, zone)].append(s)
    first = week_start(period_start.timestamp(), zone)
    last = week_start(period_end.timestamp() - 1e-6, zone)
    rows: list[WeekRow] = []
    monday = first
    while monday <= last:
        group = weeks.get(monday, [])
        owed = [s for s in group if s.owed]
        recorded = [s for s in group if s.recorded]
        begins = dt.datetime.combine(monday, dt.time(0), tzinfo=zone)
        ends = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), tzinfo=zone)
        iso = monday.isocalendar()
        rows.append(
            WeekRow(
                week=f"{iso.year}-W{iso.week:02d}",
                starts=monday,
                partial=begins < period_start or ends > period_end,
                owed=len(owed),
                recording_rate=_rate(owed),
                within_24h=proportion(sum(1 for s in recorded if s.in_time), len(recorded)),
            )
        )
        monday += dt.timedelta(days=7)
    return WeeklyTrend(
        title="Trend by week",
        method=(
            "Subjects grouped by the ISO week (Monday to Sunday, "
            f"{zone.key} time) in which their incident was reported; the recording rate "
            "and the share recorded within the deadline as defined above, week by week. "
            "Weeks cut by the start or end of the period are marked partial."
        ),
        editions=editions_of((s.edition for s in subjects if s.owed), fallback_editions),
        weeks=rows,
    )


def week_start(ts: float, zone: ZoneInfo) -> dt.date:
    """The Monday (local date) of the ISO week containing ``ts``."""
    day = dt.datetime.fromtimestamp(ts, zone).date()
    return day - dt.timedelta(days=day.weekday())
