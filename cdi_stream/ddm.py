"""What a Dedicated Decision Maker (DDM) works with: the review queue and decisions.

The review topic carries one message per change of a flag, so the queue is a fold over
the whole topic: the latest revision per ``flag_id`` wins. Every view therefore reads
the topic from the beginning with no consumer group (nothing committed, all partitions
assigned), so two DDMs looking at the queue see the same flags, and neither moves the
other's position.

"Caught up" is judged by silence (no message for ``idle`` seconds), never by end
offsets: the local test broker reports ``ListOffsets`` LATEST wrongly, and a queue that
silently stopped early would hide flags from the people who must act on them. The
silence only starts to count once every partition has answered a fetch, so a slow
connection does not pass for an empty topic.
"""

from __future__ import annotations

import json
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cdi_stream.broker import BrokerError
from cdi_stream.contract import DdmDecision, FlagChange

if TYPE_CHECKING:
    from cdi_stream.settings import Settings

__all__ = [
    "EXPLANATION_CHARS",
    "IDLE_SECONDS",
    "DecisionError",
    "QueueCounts",
    "ReviewQueue",
    "format_due",
    "publish_decision",
    "queue_json",
    "read_review_queue",
    "render_queue",
    "watch_queue",
]

IDLE_SECONDS: Final = 2.0
"""Silence on the review topic after which a bounded read counts as caught up."""

CONNECT_SECONDS: Final = 30.0
"""How long the first fetch of every partition may take before the broker is given up on."""

EXPLANATION_CHARS: Final = 120
"""Explanations are cut to this length in the table; the JSON keeps them whole."""

REFRESH_SECONDS: Final = 0.5

_PRIORITY_RANK: Final[Mapping[str, int]] = {"P1": 0, "P2": 1, "P3": 2}
_PRIORITY_STYLE: Final[Mapping[str, str]] = {"P1": "bold red", "P2": "yellow", "P3": ""}
_STATUSES: Final = ("open", "resolved", "withdrawn")
# Lines of a rendered table that are not rows: title, borders, header, caption.
_TABLE_CHROME_LINES: Final = 7

OnSkip = Callable[[str], None]


class DecisionError(ValueError):
    """A decision that cannot be sent as given: the DDM has to change something."""


# ---------------------------------------------------------------------- the queue


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Flag counts for a summary line; every status is present, zero or not."""

    by_status: dict[str, int]
    by_finding: dict[str, dict[str, int]]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def _sort_key(flag: FlagChange) -> tuple[int, bool, datetime, datetime, str]:
    due = flag.due_at
    return (
        _PRIORITY_RANK.get(flag.priority, len(_PRIORITY_RANK)),
        due is None,  # False sorts first: flags with a deadline come before those without
        due if due is not None else flag.event_time,
        flag.event_time,
        flag.flag_id,
    )


class ReviewQueue:
    """The current state of every flag, folded from the review topic's changes.

    Pure (no Kafka) so that the ordering and revision rules can be tested and reused
    by any front end. Messages of one flag share a key and so a partition, which keeps
    them in order; the revision check still guards against a worker that republishes
    an older revision after a crash (outputs are at-least-once).
    """

    def __init__(self) -> None:
        self._flags: dict[str, FlagChange] = {}
        # Revisions of pruned flags: without them a republished older revision of a
        # closed flag would bring it back to the queue as open.
        self._pruned: dict[str, int] = {}
        # The latest event time any flag speaks of. Live, it trails the wall clock; in a
        # demo or a replay with compressed event time it runs ahead, and deadlines are
        # only meaningful against it.
        self.stream_time: datetime | None = None

    def now(self, wall: datetime) -> datetime:
        """The moment deadlines are shown against: the wall clock, or the stream's own
        time where that has run ahead of it."""
        if self.stream_time is None or self.stream_time <= wall:
            return wall
        return self.stream_time

    def __len__(self) -> int:
        return len(self._flags)

    def __contains__(self, flag_id: object) -> bool:
        return flag_id in self._flags

    def get(self, flag_id: str) -> FlagChange | None:
        """The latest known revision of a flag (None if unknown or pruned)."""
        return self._flags.get(flag_id)

    def apply(self, change: FlagChange) -> bool:
        """Keep ``change`` if it is newer than what is known; say whether it was kept.

        An equal revision is a republication of the same change, so it is ignored too.
        """
        if self.stream_time is None or change.event_time > self.stream_time:
            self.stream_time = change.event_time
        current = self._flags.get(change.flag_id)
        known = current.revision if current is not None else self._pruned.get(change.flag_id, 0)
        if change.revision <= known:
            return False
        self._pruned.pop(change.flag_id, None)
        self._flags[change.flag_id] = change
        return True

    def open_flags(self) -> list[FlagChange]:
        """Open flags in the order a DDM should take them.

        Most serious first, then the nearest deadline (flags without one after those
        with one), then the oldest finding; ``flag_id`` breaks ties so every view
        shows the same order.
        """
        return sorted((f for f in self._flags.values() if f.status == "open"), key=_sort_key)

    def counts(self) -> QueueCounts:
        """Flags by status, and by finding then status (findings in name order)."""
        by_status: Counter[str] = Counter({status: 0 for status in _STATUSES})
        by_finding: dict[str, Counter[str]] = {}
        for flag in self._flags.values():
            by_status[flag.status] += 1
            by_finding.setdefault(flag.finding, Counter())[flag.status] += 1
        return QueueCounts(
            by_status={status: by_status[status] for status in _STATUSES},
            by_finding={
                finding: {status: counts[status] for status in _STATUSES}
                for finding, counts in sorted(by_finding.items())
            },
        )

    def prune_closed(self) -> int:
        """Forget resolved and withdrawn flags; return how many were forgotten.

        A long-running view otherwise grows with every flag ever raised. Only the
        revision of each pruned flag is kept, so stale copies stay ignored while a
        later revision (the flag reopened) is still taken.
        """
        closed = [flag for flag in self._flags.values() if flag.status != "open"]
        for flag in closed:
            del self._flags[flag.flag_id]
            self._pruned[flag.flag_id] = flag.revision
        return len(closed)


# ---------------------------------------------------------------------- rendering


def _clean(text: str) -> str:
    """Make stream text safe to show on a terminal.

    The texts come from other systems; escape sequences or bidirectional overrides in
    them could rewrite or disguise what a DDM sees.
    """
    return "".join(
        " "
        if char in "\t\n\r"
        else "\ufffd"
        if unicodedata.category(char) in {"Cc", "Cf"}
        else char
        for char in text
    )


def _scalar(value: str | int | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pairs(values: Mapping[str, str | int | bool | None]) -> str:
    return ", ".join(f"{key}={_scalar(value)}" for key, value in values.items()) or "-"


def _span(delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else "<1m"


def format_due(due_at: datetime | None, now: datetime) -> str:
    """``in 3h 12m``, ``overdue 2h`` or ``-``; whole minutes, rounded towards zero.

    Rounding down never overstates the time left, and a DDM reads "overdue <1m" as
    what it is.
    """
    if due_at is None:
        return "-"
    delta = due_at - now
    return f"in {_span(delta)}" if delta >= timedelta(0) else f"overdue {_span(delta)}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Columns in display order. The essential ones always show, at their content's
# width. The others show only as the width allows, most useful first; each has a
# minimum and a comfortable width, and the explanation takes whatever is left.
_ESSENTIAL: Final = frozenset({"pri", "incident", "due", "flag"})
_OPTIONAL: Final[Mapping[str, tuple[int, int]]] = {
    "finding": (12, 29),
    "explanation": (24, 60),
    "victim": (6, 12),
    "expected / observed": (30, 48),
}
_GROWTH_ORDER: Final = ("victim", "finding", "explanation", "expected / observed")
_COLUMNS: Final = (
    "pri",
    "finding",
    "incident",
    "victim",
    "due",
    "expected / observed",
    "flag",
    "explanation",
)
_WRAPPING: Final = frozenset({"explanation"})


def _overhead(columns: int) -> int:
    # One space of padding on each side of a cell, and a border between and around.
    return 3 * columns + 1


def _content_width(name: str, rows: list[dict[str, Text]]) -> int:
    return max([len(name), *(max(map(len, row[name].plain.split("\n"))) for row in rows)])


def _layout(rows: list[dict[str, Text]], width: int) -> dict[str, int]:
    """Column widths that fit ``width``: which columns show, and how wide.

    Left to rich, a narrow terminal squeezes every column evenly, and the priority
    and flag id (what a DDM needs to act) are among the first to become unreadable.
    """
    chosen = {name: _content_width(name, rows) for name in _ESSENTIAL}
    spare = width - _overhead(len(chosen)) - sum(chosen.values())
    for name, (minimum, _) in _OPTIONAL.items():
        if spare >= minimum + 3:
            chosen[name] = minimum
            spare -= minimum + 3
    for name in _GROWTH_ORDER:
        if name in chosen:
            wanted = min(_OPTIONAL[name][1], _content_width(name, rows))
            grow = max(0, min(spare, wanted - chosen[name]))
            chosen[name] += grow
            spare -= grow
    if "explanation" in chosen:
        wanted = min(EXPLANATION_CHARS, _content_width("explanation", rows))
        chosen["explanation"] += max(0, min(spare, wanted - chosen["explanation"]))
    return {name: chosen[name] for name in _COLUMNS if name in chosen}


def _row(flag: FlagChange, now: datetime) -> dict[str, Text]:
    due = format_due(flag.due_at, now)
    return {
        "pri": Text(flag.priority, style=_PRIORITY_STYLE.get(flag.priority, "")),
        "finding": Text(flag.finding + ("\nupheld" if flag.ddm_decision == "upheld" else "")),
        "incident": Text(_clean(flag.incident_id)),
        "victim": Text(_clean(flag.victim_ref) if flag.victim_ref else "-"),
        "due": Text(due, style="bold red" if due.startswith("overdue") else ""),
        "expected / observed": Text(
            f"exp {_clean(_pairs(flag.expected))}\nobs {_clean(_pairs(flag.observed))}"
        ),
        "flag": Text(_clean(flag.flag_id)),
        "explanation": Text(_truncate(_clean(flag.explanation), EXPLANATION_CHARS)),
    }


def render_queue(
    queue: ReviewQueue,
    *,
    now: datetime,
    limit: int,
    caption: str | None = None,
    width: int | None = None,
) -> Table:
    """The open flags as a table, at most ``limit`` rows, most urgent first.

    With ``width`` (the terminal's), columns that do not fit are left out, least
    useful first, rather than every column squeezed. Every cell is a ``Text``, never
    markup: a ``[`` in stream data must print as itself, not restyle the row.
    """
    flags = queue.open_flags()
    shown = flags[: max(limit, 0)]
    rows = [_row(flag, now) for flag in shown]
    by_priority: Counter[str] = Counter(flag.priority for flag in flags)
    summary = ", ".join(f"{p} {by_priority[p]}" for p in _PRIORITY_RANK if by_priority[p])
    title = f"DDM review queue: {len(flags)} open" + (f" ({summary})" if summary else "")
    notes = [f"showing {len(shown)} of {len(flags)}"] if len(shown) < len(flags) else []
    if caption:
        notes.append(caption)
    table = Table(
        title=title,
        title_justify="left",
        caption="; ".join(notes) or None,
        caption_justify="left",
    )
    widths: Mapping[str, int | None] = (
        _layout(rows, width) if width is not None else dict.fromkeys(_COLUMNS)
    )
    for name, column_width in widths.items():
        wraps = name in _WRAPPING
        table.add_column(
            name,
            width=column_width,
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
            max_width=_OPTIONAL[name][1] if name in _OPTIONAL and not wraps else None,
        )
    for row in rows:
        table.add_row(*(row[name] for name in widths))
    return table


def queue_json(queue: ReviewQueue) -> str:
    """The open flags as a JSON list of contract messages, in queue order.

    Same input, same text: fields in contract order, timestamps in their one UTC
    spelling, so tools can diff two snapshots.
    """
    return json.dumps([flag.model_dump(mode="json") for flag in queue.open_flags()], indent=2)


# ------------------------------------------------------------- reading the topic


def _describe(exc: ValidationError) -> str:
    # The location and message only: the offending value may be long or hostile.
    errors = exc.errors(include_input=False, include_url=False)
    if not errors:
        return "invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    text = f"{where}: {first['msg']}" if where else str(first["msg"])
    return text + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def _stderr_reporter(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(
        Text(f"skipped {message}", style="yellow"), highlight=False
    )


class _ReviewReader:
    """A group-less consumer of every partition of the review topic, from offset 0."""

    def __init__(self, settings: Settings, *, group: str | None, on_skip: OnSkip) -> None:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError
        from kafka.structs import TopicPartition

        self.topic = settings.topic_review
        self.received = 0
        self.last_received_at: datetime | None = None
        self._on_skip = on_skip
        config: dict[str, Any] = {
            "client_id": "cdi-stream-ddm",
            # The id is for brokers whose ACLs want one; partitions are still assigned
            # by hand and nothing is committed, so views never share or move a position.
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            # A typo in a topic name must not create a topic (with the broker's default
            # partition count, which would break co-partitioning).
            "allow_auto_create_topics": False,
        }
        config.update(settings.kafka_python_config("consumer"))
        servers = ",".join(settings.bootstrap_servers)
        try:
            self._consumer = KafkaConsumer(**config)
        except KafkaError as exc:
            raise BrokerError(f"cannot reach Kafka at {servers}: {exc}") from exc
        try:
            partitions = self._consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise BrokerError(
                    f"topic {self.topic!r} does not exist on {servers}; "
                    "the stream service creates it when it starts"
                )
            self.partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            self._consumer.assign(self.partitions)
            self._consumer.seek_to_beginning(*self.partitions)
        except KafkaError as exc:
            self.close()
            raise BrokerError(f"cannot read {self.topic!r} on {servers}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        # Bounded: kafka-python otherwise waits up to its request timeout (30 s) for
        # in-flight work, and Ctrl-C on the live queue would seem to hang.
        self._consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)

    def fetched_everywhere(self) -> bool:
        """Whether every partition has answered a fetch (its high-water mark is known).

        Only the fact that a fetch came back is used, not the mark's value.
        """
        return all(self._consumer.highwater(tp) is not None for tp in self.partitions)

    def poll(self, timeout: float) -> list[FlagChange]:
        """The valid changes that arrive within ``timeout`` seconds; the rest reported.

        Every record counts in ``received``, valid or not: silence means no records at
        all, so a burst of bad ones does not end a bounded read early.
        """
        from kafka.errors import KafkaError

        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000))
        except KafkaError as exc:
            raise BrokerError(f"reading {self.topic!r} failed: {exc}") from exc
        changes: list[FlagChange] = []
        for records in batches.values():
            for record in records:
                self.received += 1
                self.last_received_at = datetime.now(UTC)
                where = f"{record.topic} partition {record.partition} offset {record.offset}"
                if record.value is None:
                    self._on_skip(f"{where}: no value")
                    continue
                try:
                    changes.append(FlagChange.model_validate_json(record.value))
                except ValidationError as exc:
                    self._on_skip(f"{where}: {_describe(exc)}")
        return changes

    def read_until_idle(
        self,
        queue: ReviewQueue,
        idle: float,
        *,
        connect_timeout: float = CONNECT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Apply every change until the topic has been silent for ``idle`` seconds."""
        started = clock()
        silent_since: float | None = None  # set once every partition has answered
        while True:
            before = self.received
            for change in self.poll(max(0.05, min(idle, 0.2))):
                queue.apply(change)
            got_any = self.received > before
            now = clock()
            if silent_since is None:
                if self.fetched_everywhere():
                    silent_since = now
                elif now - started > connect_timeout:
                    raise BrokerError(
                        f"no fetch answer for every partition of {self.topic!r} "
                        f"within {connect_timeout:g} s"
                    )
            elif got_any:
                silent_since = now
            elif now - silent_since >= idle:
                return


@contextmanager
def _reader(settings: Settings, *, group: str | None, on_skip: OnSkip) -> Iterator[_ReviewReader]:
    reader = _ReviewReader(settings, group=group, on_skip=on_skip)
    try:
        yield reader
    finally:
        reader.close()


def read_review_queue(
    settings: Settings,
    *,
    group: str | None = None,
    idle: float = IDLE_SECONDS,
    on_skip: OnSkip | None = None,
) -> ReviewQueue:
    """The queue as it stands: the whole review topic, read until it falls silent.

    Raises :class:`~cdi_stream.broker.BrokerError` when Kafka or the topic cannot be
    reached.
    """
    queue = ReviewQueue()
    with _reader(settings, group=group, on_skip=on_skip or _stderr_reporter) as reader:
        reader.read_until_idle(queue, idle)
    return queue


# ---------------------------------------------------------------------- commands


def _fitting_table(
    queue: ReviewQueue, console: Console, *, now: datetime, caption: str | None
) -> Table:
    """The queue table with as many rows as the terminal shows whole.

    Rows are as tall as their wrapped explanation, so the count is found by rendering:
    a cut-off last row would hide the flag the "showing N of M" caption claims.
    """
    height = console.size.height - 1  # the cursor's line
    limit = max(1, height - _TABLE_CHROME_LINES)
    while True:
        table = render_queue(queue, now=now, limit=limit, caption=caption, width=console.width)
        lines = len(console.render_lines(table, console.options, pad=False))
        if lines <= height or limit == 1:
            return table
        # Scale by the average row height, then shave row by row.
        scaled = limit * (height - _TABLE_CHROME_LINES) // max(lines - _TABLE_CHROME_LINES, 1)
        limit = max(1, min(limit - 1, scaled))


CLOSE_TIMEOUT_MS = 2000


def watch_queue(
    settings: Settings,
    *,
    follow: bool,
    as_json: bool,
    group: str | None = None,
    console: Console,
    err_console: Console | None = None,
    idle: float = IDLE_SECONDS,
) -> int:
    """The body of ``cdi-stream queue``; returns the exit status.

    ``as_json`` always prints one snapshot, even with ``follow``: a live table is for
    people, and a tool that wants every change can read the topic itself. Without
    ``follow`` the table is as wide as ``console`` and shows every open flag.
    """
    err = err_console or Console(stderr=True, soft_wrap=True)
    skipped = 0

    def report(message: str) -> None:
        nonlocal skipped
        skipped += 1
        err.print(Text(f"skipped {message}", style="yellow"), highlight=False)

    try:
        with _reader(settings, group=group, on_skip=report) as reader:
            queue = ReviewQueue()
            if as_json or not follow:
                reader.read_until_idle(queue, idle)
                if as_json:
                    console.out(queue_json(queue), highlight=False)
                else:
                    caption = f"{skipped} unreadable messages skipped" if skipped else None
                    table = render_queue(
                        queue,
                        now=queue.now(datetime.now(UTC)),
                        limit=len(queue),
                        caption=caption,
                        width=console.width,
                    )
                    console.print(table)
                return 0
            _follow(reader, queue, console, idle, lambda: skipped)
            return 0
    except BrokerError as exc:
        err.print(Text.assemble(("error", "red"), f" {exc}"), highlight=False)
        return 3


def _follow(
    reader: _ReviewReader,
    queue: ReviewQueue,
    console: Console,
    idle: float,
    skipped: Callable[[], int],
) -> None:
    """Redraw twice a second (the "due" column moves with the clock) until Ctrl-C."""

    def caption(caught_up: bool) -> str:
        # When the last message came, not the time now: a broken connection shows.
        last = reader.last_received_at
        parts = [
            f"{reader.received} messages read" + (f", last at {last:%H:%M:%S} UTC" if last else "")
        ]
        if not caught_up:
            parts.append(f"reading {reader.topic}…")
        if skipped():
            parts.append(f"{skipped()} unreadable messages skipped")
        return "; ".join(parts)

    def table(caught_up: bool) -> Table:
        return _fitting_table(
            queue, console, now=queue.now(datetime.now(UTC)), caption=caption(caught_up)
        )

    caught_up = False
    silent_since: float | None = None  # as in _ReviewReader.read_until_idle
    next_draw = 0.0
    try:
        with Live(table(caught_up), console=console, auto_refresh=False) as live:
            while True:
                before = reader.received
                for change in reader.poll(0.25):
                    queue.apply(change)
                got_any = reader.received > before
                now = time.monotonic()
                if silent_since is None:
                    if reader.fetched_everywhere():
                        silent_since = now
                elif got_any:
                    silent_since = now
                elif not caught_up and now - silent_since >= idle:
                    caught_up = True
                    next_draw = 0.0
                if now >= next_draw:
                    live.update(table(caught_up), refresh=True)
                    next_draw = now + REFRESH_SECONDS
    except KeyboardInterrupt:
        return


def publish_decision(
    settings: Settings,
    *,
    flag_id: str,
    incident_id: str | None = None,
    decision: Literal["upheld", "rejected"],
    reason: str,
    ddm_ref: str,
    decided_at: datetime | None = None,
    decision_id: str | None = None,
    idle: float = IDLE_SECONDS,
    on_skip: OnSkip | None = None,
) -> DdmDecision:
    """The body of ``cdi-stream decide``: validate, send keyed by incident, return it.

    The incident id is the message key, which puts the decision on the same partition
    as the incident's events (the engine joins them there); when it is not given it
    is taken from the flag's latest message on the review topic. Everything the DDM
    typed is checked before Kafka is touched, so a mistake costs no wait.

    Raises :class:`DecisionError` for a decision that cannot be sent as given (bad
    field, blank reason, unknown flag) and :class:`~cdi_stream.broker.BrokerError`
    when Kafka cannot be reached or does not take the message.
    """
    if not reason.strip():
        raise DecisionError("give a reason: it is kept with the decision for audit")
    fields: dict[str, Any] = {
        "decision_id": decision_id if decision_id is not None else str(uuid.uuid4()),
        "flag_id": flag_id,
        "decision": decision,
        "reason": reason,
        "decided_at": decided_at if decided_at is not None else datetime.now(UTC),
        "ddm_ref": ddm_ref,
    }
    # A stand-in incident id, so the other fields are checked before any lookup.
    _validated({**fields, "incident_id": incident_id or "pending"})
    if incident_id is None:
        known = read_review_queue(settings, idle=idle, on_skip=on_skip).get(flag_id)
        if known is None:
            raise DecisionError(
                f"flag {flag_id!r} is not on {settings.topic_review!r}; check the id, "
                "or give the incident id to send the decision anyway"
            )
        incident_id = known.incident_id
    result = _validated({**fields, "incident_id": incident_id})
    _send(settings, result)
    return result


def _validated(fields: dict[str, Any]) -> DdmDecision:
    try:
        return DdmDecision.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise DecisionError(f"invalid decision: {problems}") from None


def _send(settings: Settings, decision: DdmDecision) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    servers = ",".join(settings.bootstrap_servers)
    topic = settings.topic_decisions
    config: dict[str, Any] = {
        "client_id": "cdi-stream-ddm",
        "acks": "all",
        # Never create the topic by sending to it: the broker's default partition
        # count would not match the incidents topic, and the engine would never see
        # the decision next to its incident.
        "allow_auto_create_topics": False,
        "max_block_ms": 15_000,
    }
    config.update(settings.kafka_python_config("producer"))
    try:
        producer = KafkaProducer(**config)
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {servers}: {exc}") from exc
    try:
        future = producer.send(
            topic,
            key=decision.incident_id.encode(),
            value=decision.model_dump_json().encode(),
        )
        producer.flush(timeout=15)
        future.get(timeout=15)
    except KafkaError as exc:
        raise BrokerError(
            f"the decision was not accepted by {topic!r} on {servers} (does the topic "
            f"exist?): {exc}"
        ) from exc
    finally:
        producer.close(timeout=5)
