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

from cdi_stream.contract import (
    DEFAULT_MAX_BYTES,
    ContractError,
    FlagChange,
    IncidentEvent,
    parse_incident_event,
)
from cdi_stream.engine import Engine, EngineConfig, EngineError
from cdi_stream.metrics import Metrics
from cdi_stream.rules.book import RuleBook


class OutputError(Exception):
    """Writing the flag changes failed (a full disk, a closed pipe): told apart from a
    failure to read the events, which is the input's problem."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(cause.strerror or str(cause))
        self.cause = cause


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
    max_line_bytes: int = DEFAULT_MAX_BYTES,
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
                try:
                    out.write(change.to_json_bytes() + b"\n")
                except OSError as exc:
                    raise OutputError(exc) from exc

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
        metrics.duplicate(summary.duplicates)
    end = until.timestamp() if until is not None else engine.now
    if end is not None:
        # An ``until`` before the last event leaves time there (it never moves back),
        # but what falls due at that last instant still fires, as without ``until``.
        emit(engine.advance_to(max(end, engine.now or end), inclusive=True))
    summary.unknown_offence_codes = engine.stats["unknown_offence_codes"]
    return summary


def parsed_events(
    lines: Iterable[bytes],
    counts: LineCounts,
    *,
    max_line_bytes: int = DEFAULT_MAX_BYTES,
    on_error: Callable[[LineError], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, IncidentEvent]]:
    """The events of a file with their line numbers. A line that is not a valid event
    is counted, kept (up to a bound) and reported to ``on_error``, never dropped
    silently; blank lines are skipped."""
    for number, raw in enumerate(without_bom(lines), start=1):
        counts.lines = number
        if on_progress is not None:
            on_progress(raw.size if isinstance(raw, OversizeLine) else len(raw))
        if isinstance(raw, OversizeLine):
            error = LineError(
                number, "too_large", None, f"message is {raw.size} bytes, limit {max_line_bytes}"
            )
            _reject(counts, error, on_error)
            continue
        if raw[:1] != b"{" and not raw.strip():  # an object needs no stripping to see
            continue
        if raw[-1:] in (b"\n", b"\r"):  # the line ending is no part of the message or its size
            raw = raw[:-2] if raw[-2:] == b"\r\n" else raw[:-1]
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


class OversizeLine(bytes):
    """What a line longer than the limit is read as: its first bytes and its size, so
    that one huge line (a whole file with no line breaks, say) never has to be held."""

    size: int


def bounded_lines(handle: BinaryIO, max_bytes: int) -> Iterator[bytes]:
    """The lines of ``handle`` without a byte order mark before the first, each an
    ``OversizeLine`` when it holds more than ``max_bytes`` besides its line ending;
    memory stays within about ``max_bytes``."""
    limit = max_bytes + 2  # room for a CRLF
    asked = limit + len(UTF8_BOM)  # the mark is not part of the first line's size
    while line := handle.readline(asked):
        whole = len(line) < asked or line.endswith(b"\n")
        if asked != limit:
            asked = limit
            if line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM) :]
        if whole:
            yield line
            continue
        size, tail = len(line), line[-2:]
        while more := handle.readline(limit):
            size, tail = size + len(more), (tail + more)[-2:]
            if more.endswith(b"\n"):
                break
        if tail.endswith(b"\n"):
            size -= 2 if tail == b"\r\n" else 1
        oversize = OversizeLine(line[:64])
        oversize.size = size
        yield oversize


def without_bom(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a file without the byte order mark some Windows editors write first:
    it is not part of the JSON, and left on it would lose the first line."""
    it = iter(lines)
    first = next(it, None)
    if first is None:
        return
    # Not ``removeprefix``, which would turn an ``OversizeLine`` into plain bytes.
    yield first[len(UTF8_BOM) :] if first.startswith(UTF8_BOM) else first
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
