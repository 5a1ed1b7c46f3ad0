"""Building a report: gather once (``collect``), then compute every figure.

The statement that the report is an estimate lives here, beside the one function that
puts it in every report, so no report can be made without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from cdi_stream.engine import EngineConfig
from cdi_stream.replay import LineError
from cdi_stream.report import figures
from cdi_stream.report.collect import Collected, collect
from cdi_stream.report.model import EditionInfo, Inputs, Report, RulesInfo
from cdi_stream.rules.book import RuleBook

__all__ = ["STATEMENT", "build_report", "report_from"]

STATEMENT = (
    "This is an estimate from the events supplied, not an inspection grade. It counts "
    "what the crime-recording rules, applied by this engine, find in the incident and "
    "crime-recording events it was given; it has not audited incident logs or spoken to "
    "victims, and its figures are only as complete as those events. HMICFRS grades "
    "forces from its own audit of a sample of records."
)
TITLE = "Crime recording: an estimate from incident events"


def build_report(
    events_path: Path | str,
    *,
    book: RuleBook,
    period_start: dt.datetime | None = None,
    period_end: dt.datetime | None = None,
    flags_path: Path | str | None = None,
    decisions_path: Path | str | None = None,
    yearly_volume: int | None = None,
    config: EngineConfig | None = None,
    as_of: dt.datetime | None = None,
    on_error: Callable[[LineError], None] | None = None,
) -> Report:
    """Replay ``events_path`` and report on incidents reported in [``period_start``,
    ``period_end``) (default: every incident in the file). See ``collect`` for the
    flags and decisions files; ``yearly_volume`` (recorded crimes a year) enables the
    unrecorded-crime estimate. Bad lines go to ``on_error`` and are counted."""
    if yearly_volume is not None and yearly_volume < 0:
        raise ValueError("the yearly volume must not be negative")
    gathered = collect(
        events_path,
        book=book,
        period_start=period_start,
        period_end=period_end,
        flags_path=flags_path,
        decisions_path=decisions_path,
        config=config,
        as_of=as_of,
        on_error=on_error,
    )
    return report_from(
        gathered,
        book=book,
        yearly_volume=yearly_volume,
        sources=(str(events_path), flags_path, decisions_path),
    )


def report_from(
    gathered: Collected,
    *,
    book: RuleBook,
    yearly_volume: int | None,
    sources: tuple[str, Path | str | None, Path | str | None],
) -> Report:
    """Every figure of the report from what ``collect`` gathered."""
    subjects = gathered.subjects
    start, end = gathered.start, gathered.end
    zone = ZoneInfo(book.source.editions.timezone)
    in_force = _editions_in_force(book, start.timestamp(), end.timestamp())
    evaluated = dt.datetime.fromtimestamp(gathered.evaluated_at, zone).strftime("%Y-%m-%d %H:%M %Z")
    rate = figures.recording_rate(subjects, evaluated=evaluated, fallback_editions=in_force)
    by_edition = {e: sum(1 for s in subjects if s.edition == e and s.recordable) for e in in_force}
    events_file, flags_file, decisions_file = sources
    counts = gathered.counts
    decisions = gathered.decisions
    return Report(
        title=TITLE,
        statement=STATEMENT,
        period_start=start,
        period_end=end,
        evaluated_at=dt.datetime.fromtimestamp(gathered.evaluated_at, dt.UTC),
        complete_at=dt.datetime.fromtimestamp(gathered.complete_at, dt.UTC),
        timezone=zone.key,
        rules=RulesInfo(
            content_hash=book.content_hash,
            editions=[
                EditionInfo(
                    id=e.id,
                    title=e.doc.title,
                    effective_from=e.doc.effective_from,
                    subjects=by_edition[e.id],
                )
                for e in book.editions
                if e.id in by_edition
            ],
        ),
        inputs=Inputs(
            events_file=events_file,
            flags_file=None if flags_file is None else str(flags_file),
            decisions_file=None if decisions_file is None else str(decisions_file),
            lines=counts.lines,
            events=counts.events,
            rejected=counts.rejected,
            duplicates=counts.duplicates,
            outside_period=counts.outside_period,
            flag_lines_rejected=gathered.flag_lines.rejected if gathered.flag_lines else 0,
            decision_lines_rejected=(
                gathered.decision_lines.rejected if gathered.decision_lines else 0
            ),
            incidents=len(gathered.incidents),
            subjects=sum(1 for s in subjects if s.recordable),
        ),
        recording_rate=rate,
        unrecorded=figures.unrecorded(rate.overall, yearly_volume, editions=rate.editions),
        timeliness=figures.timeliness(
            subjects, deadline_hours=gathered.deadline_hours, fallback_editions=in_force
        ),
        flags=figures.flag_counts(
            gathered.flags.values(),
            source=gathered.flag_source,
            outside_period=gathered.flags_outside_period,
            evaluated=evaluated,
            fallback_editions=in_force,
        ),
        cancellations=figures.cancellation_checks(
            gathered.cancellations, fallback_editions=in_force
        ),
        decisions=figures.decisions_figure(
            gathered.flags,
            decisions,
            fallback_editions=in_force,
        ),
        trend=figures.weekly_trend(
            subjects, period_start=start, period_end=end, zone=zone, fallback_editions=in_force
        ),
    )


def _editions_in_force(book: RuleBook, lo: float, hi: float) -> list[str]:
    """The editions whose time overlaps [lo, hi)."""
    out = []
    for i, edition in enumerate(book.editions):
        ends = book.editions[i + 1].starts_at if i + 1 < len(book.editions) else float("inf")
        if edition.starts_at < hi and ends > lo:
            out.append(edition.id)
    return out
