"""Gathering what a report counts: replay the events once, then read the outcomes.

The events are replayed through the same engine a worker runs, with an event-time
clock as ``cdi-stream replay`` uses, so the flags counted are exactly those a replay
publishes and the outcomes are read from the facts the rules saw. Outcomes are read as
at the last event in the file, or at ``as_of`` (when the file was extracted) if that is
later: nothing in the file says what happened after it ends, so a subject whose
deadline had not passed by then and that was not yet recorded is *pending*, left out
of the rates, never counted as unrecorded.

Every event is replayed, whatever the period: which period an incident belongs to is
only known once its events are in (the engine dates it by its earliest report, a
corrected report may move it, and an incident reported again after its state was
dropped is a new case), and skipping events would also hold back the clock that
fires other incidents' deadlines. The period only selects the outcomes and flags
counted. One departure from a plain replay, which changes no flag: cases the engine
drops at the end of their retention are kept aside, because a month-long period
outlasts the retention of its first incidents.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cdi_stream.contract import DEFAULT_MAX_BYTES, DdmDecision
from cdi_stream.engine import Engine, EngineConfig, EngineError, MemoryStore
from cdi_stream.engine.outcomes import CancellationOutcome, SubjectOutcome, case_outcomes
from cdi_stream.engine.state import CaseState
from cdi_stream.replay import LineCounts, LineError, apply_event, bounded_lines, parsed_events
from cdi_stream.report.inputs import (
    FlagFold,
    FlagState,
    ReadCounts,
    read_decisions,
    read_flags,
)
from cdi_stream.rules.book import RuleBook

__all__ = ["Collected", "collect"]


@dataclass(slots=True)
class ReplayCounts(LineCounts):
    outside_period: int = 0
    # The latest event time in the file, inside the period or not: how far it reaches.
    last_event: float = 0.0


@dataclass(slots=True)
class Collected:
    """Everything the figures are computed from, for incidents reported in
    [``start``, ``end``), as at ``evaluated_at`` (epoch seconds)."""

    start: dt.datetime
    end: dt.datetime
    evaluated_at: float
    deadline_hours: float
    # The moment every subject reported in the period is due: outcomes read earlier
    # leave some pending.
    complete_at: float
    incidents: set[str]
    subjects: list[SubjectOutcome]
    cancellations: list[CancellationOutcome]
    flags: dict[str, FlagState]
    flags_outside_period: int
    flag_source: str
    decisions: list[DdmDecision] | None
    counts: ReplayCounts
    flag_lines: ReadCounts | None = None
    decision_lines: ReadCounts | None = None


class _KeepingStore(MemoryStore):
    """A memory store that keeps what the engine drops at the end of retention."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: list[CaseState] = []

    def delete(self, incident_id: str) -> None:
        case = self.get(incident_id)
        if case is not None:
            self.dropped.append(case)
        super().delete(incident_id)

    def every_case(self) -> Iterator[CaseState]:
        yield from self.dropped
        for incident_id in self:
            case = self.get(incident_id)
            if case is not None:
                yield case


def collect(
    events_path: Path | str,
    *,
    book: RuleBook,
    period_start: dt.datetime | None = None,
    period_end: dt.datetime | None = None,
    flags_path: Path | str | None = None,
    decisions_path: Path | str | None = None,
    config: EngineConfig | None = None,
    as_of: dt.datetime | None = None,
    on_error: Callable[[LineError], None] | None = None,
) -> Collected:
    """Replay ``events_path`` and gather outcomes and flags for the period (default:
    from the first report in the file to just after the last).

    ``flags_path`` replaces the replay's flags (for example a dump of the review topic,
    which carries the DDMs' withdrawals); ``decisions_path`` gives DDM decisions, which
    are also applied during the replay when no flag file is given, as a worker applies
    them.
    """
    for moment in (period_start, period_end, as_of):
        if moment is not None and moment.tzinfo is None:
            raise ValueError("period bounds and as-of times must carry a timezone offset")
    if period_start and period_end and period_end <= period_start:
        raise ValueError("the period must end after it starts")
    cfg = config or EngineConfig()
    decisions, decision_lines = None, None
    if decisions_path is not None:
        decisions, decision_lines = read_decisions(Path(decisions_path))
    store = _KeepingStore()
    engine = Engine(book, store=store, config=cfg)
    replayed = FlagFold()
    counts = _replay(
        Path(events_path),
        engine,
        replayed,
        decisions if flags_path is None else None,
        as_of.timestamp() if as_of else None,
        on_error,
    )
    # The incidents' reports as the engine holds them (the earliest of each), for the
    # bounds not given: from the first report to just past the last (half-open).
    bounds = (
        period_start.timestamp() if period_start else None,
        period_end.timestamp() if period_end else None,
    )
    # (incident, its report, events applied) of every case reported, dropped ones too.
    reported = [
        (case.incident_id, case.report, len(case.seen))
        for case in store.every_case()
        if case.report is not None
    ]
    held = [r.reported_at for _, r, _ in reported if _within(r.reported_at, *bounds)]
    if not held and counts.events and (period_start is None or period_end is None):
        raise ValueError(
            "no incident in the file is reported in the period; give both --from and --to "
            "to report on a period with none"
        )
    start = period_start or _utc(min(held, default=None))
    end = period_end or _utc(max(held) + 1 if held else None)
    # The events say how far the record goes, not the decisions: a decision made after
    # the extract must not make crimes not yet due look unrecorded.
    evaluated_at = max(counts.last_event, as_of.timestamp() if as_of else 0.0)
    replayed.extend(engine.advance_to(evaluated_at, inclusive=True))
    fold, flag_lines = replayed, None
    if flags_path is not None:
        fold = FlagFold()
        flag_lines = read_flags(Path(flags_path), fold)

    lo, hi = start.timestamp(), end.timestamp()
    # Replayed like every other (their events count as applied), but not counted.
    counts.outside_period = sum(n for _, r, n in reported if not lo <= r.reported_at < hi)
    incidents: set[str] = set()
    subjects: list[SubjectOutcome] = []
    cancellations: list[CancellationOutcome] = []
    for outcome in case_outcomes(engine, evaluated_at, store.every_case()):
        if lo <= outcome.reported_at < hi:
            incidents.add(outcome.incident_id)
            subjects.extend(outcome.subjects)
            cancellations.extend(outcome.cancellations)
    # An incident reported again after its state was dropped is a new case: the old
    # case's flags (raised before the new case's report) are not the period's. Replayed
    # flags carry event time, as the report does; a flags file's carry the wall clock.
    since = {i: r.at for i, r, _ in reported if lo <= r.reported_at < hi}
    in_period = {
        k: f
        for k, f in fold.flags.items()
        if f.incident_id in incidents
        and (flags_path is not None or f.first_seen >= since[f.incident_id])
    }
    return Collected(
        start=start,
        end=end,
        evaluated_at=evaluated_at,
        deadline_hours=cfg.deadline / 3600.0,
        complete_at=end.timestamp() + cfg.deadline,
        incidents=incidents,
        subjects=subjects,
        cancellations=cancellations,
        flags=in_period,
        flags_outside_period=len(fold.flags) - len(in_period),
        flag_source="replay" if flags_path is None else "file",
        decisions=decisions,
        counts=counts,
        flag_lines=flag_lines,
        decision_lines=decision_lines,
    )


def _replay(
    path: Path,
    engine: Engine,
    fold: FlagFold,
    decisions: list[DdmDecision] | None,
    as_of: float | None,
    on_error: Callable[[LineError], None] | None,
) -> ReplayCounts:
    counts = ReplayCounts()
    pending = iter(decisions or ())
    next_decision = next(pending, None)
    with path.open("rb") as handle:
        events = parsed_events(
            bounded_lines(handle, DEFAULT_MAX_BYTES),
            counts,
            max_line_bytes=DEFAULT_MAX_BYTES,
            on_error=on_error,
        )
        for number, event in events:
            counts.last_event = max(counts.last_event, event.occurred_at.timestamp())
            t = event.occurred_at.timestamp()
            while next_decision is not None and next_decision.decided_at.timestamp() < t:
                _decide(engine, fold, next_decision)
                next_decision = next(pending, None)
            changes = apply_event(engine, number, event, counts, on_error)
            if changes is not None:
                fold.extend(changes)
    horizon = max(counts.last_event, as_of or 0.0)
    while next_decision is not None:
        _decide(engine, fold, next_decision, horizon)
        next_decision = next(pending, None)
    return counts


def _decide(
    engine: Engine, fold: FlagFold, decision: DdmDecision, horizon: float = math.inf
) -> None:
    """Apply a decision at its own time, as a worker would, but never past ``horizon``
    (the end of the record); one for a flag this replay never raised changes nothing
    here and is counted as unmatched in the figures."""
    fold.extend(engine.advance_to(min(decision.decided_at.timestamp(), horizon), inclusive=False))
    with contextlib.suppress(EngineError):  # an unknown flag, or one too many
        fold.extend(engine.decide(decision))


def _within(t: float, start: float | None, end: float | None) -> bool:
    return (start is None or t >= start) and (end is None or t < end)


def _utc(ts: float | None) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts or 0.0, dt.UTC)
