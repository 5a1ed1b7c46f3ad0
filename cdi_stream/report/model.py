"""The report's figures as data: what ``--json`` writes and what the HTML page shows.

One model serves both so that the page can never show a number the JSON does not
carry. Every figure carries the text that says how it was computed and the rules
editions it applied, because a rate without its definition invites comparison with
inspection grades it is not.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

REPORT_SCHEMA: Final = "cdi-stream.report/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interval(_Model):
    """A 95% confidence interval of a proportion, as fractions."""

    low: float = Field(ge=0.0, le=1.0)
    high: float = Field(ge=0.0, le=1.0)


class Proportion(_Model):
    """``numerator`` of ``denominator``; ``value`` and ``ci95`` are None when it is 0 of 0."""

    numerator: int = Field(ge=0)
    denominator: int = Field(ge=0)
    value: float | None = Field(default=None, ge=0.0, le=1.0)
    ci95: Interval | None = None


class Figure(_Model):
    """What every figure states besides its numbers."""

    title: str
    method: str
    editions: list[str]


class CategoryRate(_Model):
    category: str
    label: str
    rate: Proportion


class RecordingRate(Figure):
    overall: Proportion
    by_category: list[CategoryRate]
    not_recordable: int = Field(ge=0, description="subjects with contrary evidence only")
    pending: int = Field(ge=0, description="deadline not passed and not yet recorded")
    discharged: int = Field(ge=0, description="obligation ended by a closure, nothing recorded")
    validly_cancelled: int = Field(ge=0, description="every record cancelled with valid grounds")
    not_recorded: int = Field(ge=0, description="owed and not covered by a standing record")
    wrong_class: int = Field(ge=0, description="covered, but the classification is wrong")
    incomplete: int = Field(ge=0, description="conduct edition: a crime owed in addition missing")


class UnrecordedEstimate(Figure):
    yearly_volume: int | None
    rate: float | None
    estimate: int | None
    low: int | None
    high: int | None
    formula: str


class HistogramBin(_Model):
    label: str
    low_hours: float
    high_hours: float | None
    counts: dict[str, int]


class CategoryTimeliness(_Model):
    category: str
    label: str
    within_24h: Proportion
    median_hours: float | None
    p90_hours: float | None


class Timeliness(Figure):
    overall: CategoryTimeliness
    by_category: list[CategoryTimeliness]
    histogram: list[HistogramBin]


class FlagRow(_Model):
    finding: str
    priority: str
    open: int = Field(ge=0)
    resolved: int = Field(ge=0)
    withdrawn: int = Field(ge=0)


class FlagCounts(Figure):
    source: Literal["replay", "file"]
    rows: list[FlagRow]
    open: int = Field(ge=0)
    resolved: int = Field(ge=0)
    withdrawn: int = Field(ge=0)
    outside_period: int = Field(ge=0, description="flags on incidents not reported in the period")


class CancellationChecks(Figure):
    checked: int = Field(ge=0)
    incorrect: int = Field(ge=0)
    share_incorrect: Proportion
    by_problem: dict[str, int]


class RuleDecisions(_Model):
    rule_id: str
    finding: str
    flags: int = Field(ge=0, description="flags this rule raised on the period's incidents")
    upheld: int = Field(ge=0)
    rejected: int = Field(ge=0)
    precision: Proportion
    median_hours_to_decision: float | None


class Decisions(Figure):
    supplied: bool
    decisions: int = Field(ge=0, description="decisions read, one per flag (the latest)")
    unmatched: int = Field(ge=0, description="decisions on flags not raised in the period")
    rows: list[RuleDecisions]


class WeekRow(_Model):
    week: str
    starts: dt.date
    partial: bool
    owed: int = Field(ge=0)
    recording_rate: Proportion
    within_24h: Proportion


class WeeklyTrend(Figure):
    weeks: list[WeekRow]


class EditionInfo(_Model):
    id: str
    title: str
    effective_from: dt.date
    subjects: int = Field(ge=0)


class RulesInfo(_Model):
    content_hash: str
    editions: list[EditionInfo]


class Inputs(_Model):
    events_file: str
    flags_file: str | None
    decisions_file: str | None
    lines: int = Field(ge=0)
    events: int = Field(ge=0)
    rejected: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    outside_period: int = Field(
        ge=0, description="of the events applied, those of incidents reported outside it"
    )
    flag_lines_rejected: int = Field(ge=0, description="lines of the flag file not read")
    decision_lines_rejected: int = Field(ge=0, description="lines of the decisions file not read")
    incidents: int = Field(ge=0, description="incidents reported in the period")
    subjects: int = Field(ge=0, description="subjects of those incidents")


class Report(_Model):
    schema_name: Literal["cdi-stream.report/1"] = Field(default=REPORT_SCHEMA, alias="schema")
    title: str
    statement: str
    period_start: dt.datetime
    period_end: dt.datetime
    evaluated_at: dt.datetime
    complete_at: dt.datetime = Field(
        description="when every deadline of the period has passed; counted earlier, "
        "crimes not yet due and not yet recorded are pending, left out of the rates"
    )
    timezone: str
    rules: RulesInfo
    inputs: Inputs
    recording_rate: RecordingRate
    unrecorded: UnrecordedEstimate
    timeliness: Timeliness
    flags: FlagCounts
    cancellations: CancellationChecks
    decisions: Decisions
    trend: WeeklyTrend

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def figures(self) -> list[Figure]:
        """Every figure, in the order the page shows them."""
        return [
            self.recording_rate,
            self.unrecorded,
            self.timeliness,
            self.flags,
            self.cancellations,
            self.decisions,
            self.trend,
        ]

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"

    @property
    def complete(self) -> bool:
        """Nothing left pending: counted after every deadline of the period (a victim
        who disclosed late has a later deadline, hence the pending count too)."""
        return self.evaluated_at >= self.complete_at and self.recording_rate.pending == 0

    def summary(self) -> str:
        """One line for a terminal: the headline figures and how many were owed."""
        rate = self.recording_rate.overall
        timely = self.timeliness.overall.within_24h

        def pct(p: Proportion) -> str:
            if p.value is None or p.ci95 is None:
                return "-"
            return f"{100 * p.value:.1f}% ({100 * p.ci95.low:.1f}-{100 * p.ci95.high:.1f}%)"

        return (
            f"incidents: {self.inputs.incidents:,}  crimes owed: {rate.denominator:,}  "
            f"recording rate: {pct(rate)}  {self.timeliness.title.lower()}: {pct(timely)}  "
            f"open flags: {self.flags.open:,}  events rejected: {self.inputs.rejected:,}"
        )
