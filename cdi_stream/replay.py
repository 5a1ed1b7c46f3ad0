"""Offline replay: the engine driven by a file, with an event-time clock.

Time advances with the events (each event first fires what was due before it); at the
end it advances to ``until`` or, by default, to the last event's time. The same engine
serves the streaming workers, so a replay is how one checks, without a broker, which
flags a DDM would see.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from cdi_stream.contract import ContractError, FlagChange, IncidentEvent, parse_incident_event
from cdi_stream.engine import Engine, EngineConfig, EngineError
from cdi_stream.metrics import Metrics
from cdi_stream.rules.book import RuleBook


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    kind: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"line {self.line}: {self.kind}{where}: {self.message}"


@dataclass(slots=True)
class LineCounts:
    """What became of the lines of an event file."""

    lines: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)


@dataclass(slots=True)
class ReplaySummary(LineCounts):
    flag_changes: int = 0
    unknown_offence_codes: int = 0
    # Event time after the last event (epoch seconds): where ``until`` starts from.
    last_event_at: float | None = None
    final_status: dict[str, tuple[str, str]] = field(default_factory=dict)

    def flags_by_finding(self) -> dict[str, Counter[str]]:
        """Final status counts per finding, one count per flag id."""
        out: dict[str, Counter[str]] = {}
        for finding, status in self.final_status.values():
            out.setdefault(finding, Counter())[status] += 1
        return dict(sorted(out.items()))


def replay(
    lines: Iterable[bytes],
    book: RuleBook,
    *,
    out: BinaryIO | None = None,
    until: dt.datetime | None = None,
    config: EngineConfig | None = None,
    on_error: Callable[[LineError], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_line_bytes: int = 1_048_576,
    metrics: Metrics | None = None,
) -> ReplaySummary:
    """Run every line through the engine; bad lines are reported and skipped.

    With ``metrics``, the replay counts what a worker would (rejected lines as dead
    letters), so the metrics of a stream can be checked without a broker."""
    engine = Engine(book, config=config, observer=metrics)
    summary = ReplaySummary()
    if metrics is not None:
        metrics.rules_loaded_now([e.id for e in book.editions], book.content_hash)

        on_error = _counting_dead_letters(metrics, on_error)

    def emit(changes: list[FlagChange]) -> None:
        if metrics is not None:
            metrics.flags_changed(changes)
        for change in changes:
            summary.flag_changes += 1
            summary.final_status[change.flag_id] = (change.finding, change.status)
            if out is not None:
                out.write(change.to_json_bytes() + b"\n")

    events = parsed_events(
        lines, summary, max_line_bytes=max_line_bytes, on_error=on_error, on_progress=on_progress
    )
    for number, event in events:
        changes = apply_event(engine, number, event, summary, on_error)
        if changes is None:
            continue
        emit(changes)
        if metrics is not None:
            metrics.consumed(event.event_type)
    summary.last_event_at = engine.now
    if metrics is not None and summary.duplicates:
        metrics.duplicates.inc(summary.duplicates)
    if until is not None:
        emit(engine.advance_to(until.timestamp(), inclusive=True))
    elif engine.now is not None:
        emit(engine.advance_to(engine.now, inclusive=True))
    summary.unknown_offence_codes = engine.stats["unknown_offence_codes"]
    return summary


def parsed_events(
    lines: Iterable[bytes],
    counts: LineCounts,
    *,
    max_line_bytes: int = 1_048_576,
    on_error: Callable[[LineError], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, IncidentEvent]]:
    """The events of a file with their line numbers. A line that is not a valid event
    is counted, kept (up to a bound) and reported to ``on_error``, never dropped
    silently; blank lines are skipped."""
    for number, raw in enumerate(without_bom(lines), start=1):
        counts.lines = number
        if on_progress is not None:
            on_progress(len(raw))
        if raw[:1] != b"{" and not raw.strip():  # an object needs no stripping to see
            continue
        try:
            event = parse_incident_event(raw, max_bytes=max_line_bytes)
        except ContractError as exc:
            _reject(counts, LineError(number, exc.kind, exc.field, exc.message), on_error)
            continue
        yield number, event


def apply_event(
    engine: Engine,
    number: int,
    event: IncidentEvent,
    counts: LineCounts,
    on_error: Callable[[LineError], None] | None = None,
) -> list[FlagChange] | None:
    """Apply one event from line ``number``: its flag changes, or None when the event
    was a duplicate (counted) or broke an incident bound (rejected as a bad line)."""
    if engine.is_duplicate(event):
        counts.duplicates += 1
        return None
    try:
        changes = engine.apply(event)
    except EngineError as exc:
        _reject(counts, LineError(number, "incident_limit", None, str(exc)), on_error)
        return None
    counts.events += 1
    return changes


MAX_KEPT_ERRORS = 1000
UTF8_BOM = b"\xef\xbb\xbf"


def without_bom(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a file without the byte order mark some Windows editors write first:
    it is not part of the JSON, and left on it would lose the first line."""
    it = iter(lines)
    first = next(it, None)
    if first is None:
        return
    yield first.removeprefix(UTF8_BOM)
    yield from it


def _counting_dead_letters(
    metrics: Metrics, on_error: Callable[[LineError], None] | None
) -> Callable[[LineError], None]:
    """A worker sends every line rejected here to the dead letter topic; count them so."""

    def rejected(error: LineError) -> None:
        metrics.dead_letter(error.kind)
        if on_error is not None:
            on_error(error)

    return rejected


def _reject(
    counts: LineCounts, error: LineError, on_error: Callable[[LineError], None] | None
) -> None:
    """Count a bad line and keep it for the summary (the first ``MAX_KEPT_ERRORS``)."""
    counts.rejected += 1
    if len(counts.errors) < MAX_KEPT_ERRORS:
        counts.errors.append(error)
    if on_error is not None:
        on_error(error)
