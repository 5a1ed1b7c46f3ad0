"""The faust application: topics in, the engine in the middle, flags and dead letters out.

Everything here is plumbing. Rule logic lives in the engine; this module only decodes
messages, feeds them to the engine with the right clock, sends what the engine
returns, keeps the engine's state in changelog-backed tables and counts what it did.

Semantics and limits:

* At least once. An input offset is committed only after its event was processed;
  a worker that dies reprocesses from the last commit. A repeated event changes no
  state, but its incident's flags are republished with the ids and revisions they
  already have, so a message lost in the crash reaches the review topic after all.
  After a rebalance or restart every flag of the partitions taken over is republished
  the same way (deadline firings are not tied to an input offset).
* Time. Each input partition has its own engine clock, driven by that partition's
  event-time watermark (the latest event time seen on it): event time running ahead
  on one partition never fires deadlines of incidents on another that is still
  catching up. ``hybrid``: a timer moves every partition's clock to the later of the
  wall clock and its watermark, so deadlines fire on time when no events arrive and a
  stream with compressed event time still drives them. ``event``: only event time
  moves a clock (replays).
* An incident belongs to the partition Kafka's default (murmur2) partitioner gives
  its id; producers must key events by ``incident_id`` with that partitioner (the
  Java client's and kafka-python's default; librdkafka's is ``murmur2_random``).
* Bad input never stops a worker: it goes to the dead letter topic with the original
  bytes and a structured reason. So does an event dated more than
  ``max_event_ahead_seconds`` ahead of the wall clock, which would otherwise move its
  partition's clock past every open deadline.
* Rules are reloaded between events when the rules directory changes (see
  ``cdi_stream.rules.reload``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import faust
from faust.types import TableT

from cdi_stream.contract import (
    ContractError,
    DeadLetter,
    DeadLetterError,
    FlagChange,
    parse_decision,
    parse_incident_event,
)
from cdi_stream.engine import Engine, EngineError, HeapDeadlines, UnknownFlag
from cdi_stream.metrics import Metrics
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.reload import ReloadResult, RulesReloader
from cdi_stream.settings import CASES_TABLE, Settings
from cdi_stream.stream.tables import TableStore
from cdi_stream.stream.transport import low_latency_app

log = logging.getLogger(__name__)

# Topic options: keys and values stay bytes, so the shell sees exactly what was sent
# (a message that does not parse must reach the dead letter topic unchanged).
RAW_BYTES: Final[Mapping[str, Any]] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
TICK_SECONDS = 0.2


@dataclass
class Shell:
    """What the agents share: one engine per owned partition over one case table."""

    settings: Settings
    book: RuleBook
    store: TableStore
    metrics: Metrics = field(default_factory=Metrics)
    send_review: Callable[[FlagChange], Awaitable[None]] | None = None
    send_dlq: Callable[[DeadLetter], Awaitable[None]] | None = None
    wall_clock: Callable[[], float] = time.time
    engines: dict[int, Engine] = field(default_factory=dict)
    watermarks: dict[int, float] = field(default_factory=dict)

    def partition_of(self, incident_id: str) -> int:
        return self.store.partition_of(incident_id)

    def engine_for(self, partition: int) -> Engine:
        engine = self.engines.get(partition)
        if engine is None:
            engine = self.engines[partition] = Engine(
                self.book,
                store=self.store,
                deadlines=HeapDeadlines(),
                config=self.settings.engine_config(),
                wall_clock=self.wall_clock,
                observer=self.metrics,
            )
            if self.settings.clock == "hybrid":
                # Start at the wall clock, as the timer would: an event that arrives
                # before the first tick must be judged at the same moment as one after.
                # Nothing is scheduled yet, so nothing fires.
                start = max(self.watermarks.get(partition, 0.0), self.wall_clock())
                engine.advance_to(start, inclusive=True)
        return engine

    def now(self) -> float | None:
        """The earliest partition clock: what every owned partition has reached."""
        clocks = [e.now for e in self.engines.values() if e.now is not None]
        return min(clocks) if clocks else None

    async def on_incident(
        self,
        key: bytes | None,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        published_at: float | None = None,
    ) -> None:
        raw = value or b""
        try:
            event = parse_incident_event(raw, max_bytes=self.settings.max_message_bytes)
        except ContractError as exc:
            await self.dead_letter(key, raw, _refusal(exc, value), topic, partition, offset)
            return
        t = event.occurred_at.timestamp()
        ahead = self.settings.max_event_ahead_seconds
        if ahead and t > self.wall_clock() + ahead:
            error = DeadLetterError(
                kind="future_event",
                field="occurred_at",
                message=f"more than {ahead:g} s ahead of the wall clock",
            )
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        if not await self._placed(event.incident_id, key, raw, topic, partition, offset):
            return
        engine = self.engine_for(partition)
        if engine.is_duplicate(event):
            self.metrics.duplicate()
            await self.publish(engine.current_flags(event.incident_id), new=False)
            return
        try:
            changes = engine.apply(event)
        except EngineError as exc:
            error = DeadLetterError(kind="incident_limit", field=None, message=str(exc))
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        except Exception as exc:  # a bug must not stop the partition: park the event
            log.exception("engine failed on %s/%s@%s", topic, partition, offset)
            error = DeadLetterError(kind="engine_error", field=None, message=repr(exc)[:500])
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        self.metrics.consumed(event.event_type)
        if t > self.watermarks.get(partition, 0.0):
            self.watermarks[partition] = t
            self.metrics.watermark(partition, t)
        await self.publish(changes, new=True, published_at=published_at)

    async def on_decision(
        self,
        key: bytes | None,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        published_at: float | None = None,
    ) -> None:
        raw = value or b""
        try:
            decision = parse_decision(raw, max_bytes=self.settings.max_message_bytes)
        except ContractError as exc:
            await self.dead_letter(key, raw, _refusal(exc, value), topic, partition, offset)
            return
        if not await self._placed(decision.incident_id, key, raw, topic, partition, offset):
            return
        try:
            changes = self.engine_for(partition).decide(decision)
        except UnknownFlag as exc:
            error = DeadLetterError(kind="unknown_flag", field="flag_id", message=str(exc))
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        except EngineError as exc:
            error = DeadLetterError(kind="incident_limit", field=None, message=str(exc))
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        self.metrics.consumed("ddm_decision")
        await self.publish(changes, new=True, published_at=published_at, decided=True)

    async def tick(self) -> None:
        """Fire what is due on each partition: by its watermark, and in ``hybrid`` also
        by the wall clock."""
        wall = self.wall_clock() if self.settings.clock == "hybrid" else 0.0
        for p, engine in list(self.engines.items()):
            target = max(self.watermarks.get(p, 0.0), wall)
            if target <= 0:
                continue
            try:
                changes = engine.advance_to(target, inclusive=True)
            except Exception:  # keep the timer alive: the next tick retries
                log.exception("firing deadlines of partition %s up to %s failed", p, target)
                continue
            await self.publish(changes, new=True)

    async def publish(
        self,
        changes: list[FlagChange],
        *,
        new: bool,
        published_at: float | None = None,
        decided: bool = False,
    ) -> None:
        """Send flag changes; ``new`` ones are counted, republished ones are not.
        ``published_at`` is when the event that caused them was published; ``decided``
        says they record a DDM decision, not a finding."""
        if not changes:
            return
        if new:
            # Counted before the first await: the engine computed these changes in
            # order, and another agent or the timer may publish later ones meanwhile.
            self.metrics.flags_changed(changes, decided=decided)
        assert self.send_review is not None
        for change in changes:
            await self.send_review(change)
        if published_at:
            self.metrics.published(published_at)

    async def _placed(
        self,
        incident_id: str,
        key: bytes | None,
        raw: bytes,
        topic: str,
        partition: int,
        offset: int,
    ) -> bool:
        """Whether the message is keyed by its incident and arrived on that incident's
        partition; if not, it is dead lettered. An incident's state lives with its
        partition: processed anywhere else, its messages would raise flags that the
        worker owning the incident never revises. A wrong key is refused even where it
        happens to land on the right partition, so a mis-keyed producer loses all its
        messages to the dead letter topic, not a random part of an incident's events."""
        if key != incident_id.encode():
            shown = "no key" if key is None else f"key {key[:80].decode('utf-8', 'replace')!r}"
            error = DeadLetterError(
                kind="wrong_key",
                field="incident_id",
                message=f"the message has {shown}, not its incident_id {incident_id!r}: key "
                "every message by its incident_id",
            )
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return False
        owner = self.partition_of(incident_id)
        if owner == partition:
            return True
        error = DeadLetterError(
            kind="wrong_partition",
            field="incident_id",
            message=f"the incident belongs on partition {owner} of "
            f"{self.settings.partitions}, not {partition}: key messages by incident_id "
            "with Kafka's default (murmur2) partitioner",
        )
        await self.dead_letter(key, raw, error, topic, partition, offset)
        return False

    async def dead_letter(
        self,
        key: bytes | None,
        value: bytes,
        error: DeadLetterError,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        letter = DeadLetter.from_raw(
            key=key,
            value=value,
            error=error,
            topic=topic,
            partition=partition,
            offset=offset,
            received_at=datetime.now(UTC),
        )
        assert self.send_dlq is not None
        try:
            await self.send_dlq(letter)
        except Exception:
            # Not silent: counted, alerted on, and logged with where the original
            # still is (the input topic keeps it for its retention period).
            self.metrics.dead_letter_lost(error.kind)
            log.exception(
                "could not send a %s dead letter; the original is %s/%s@%s",
                error.kind,
                topic,
                partition,
                offset,
            )
            return
        self.metrics.dead_letter(error.kind)

    def rebuild(self, active: set[int]) -> list[FlagChange]:
        """After recovery: fresh engines for the partitions this worker owns, their
        deadline heaps and watermarks rebuilt from the table, and their flags collected
        for republishing."""
        self.store.forget_cache()
        self.engines = {}
        self.watermarks = {p: t for p, t in self.watermarks.items() if p in active}
        republish: list[FlagChange] = []
        deadlines: list[tuple[str, tuple[float, ...]]] = []
        held: Counter[int] = Counter()
        for incident_id in self.store:
            p = self.partition_of(incident_id)
            if p not in active:
                continue
            held[p] += 1
            state = self.store.get(incident_id)
            if state is None:
                continue
            engine = self.engine_for(p)
            engine.deadlines.schedule(incident_id, state.wakeup)
            if state.last_event_at > self.watermarks.get(p, 0.0):
                self.watermarks[p] = state.last_event_at
            republish.extend(engine.current_flags(incident_id))
            if state.deadlines:
                deadlines.append((incident_id, tuple(state.deadlines.values())))
        self.store.own(held)
        for p in active:
            self.engine_for(p)
            if p in self.watermarks:
                self.metrics.watermark(p, self.watermarks[p])
        self.metrics.reset_state(republish, deadlines, active)
        return republish

    def use_rules(self, book: RuleBook) -> None:
        """Swap in a new rule book between two events (see ``RulesReloader``)."""
        self.book = book
        for engine in self.engines.values():
            engine.use_rules(book)
        self.announce_rules()

    def announce_rules(self) -> None:
        self.metrics.rules_loaded_now([e.id for e in self.book.editions], self.book.content_hash)

    def reload_result(self, result: ReloadResult) -> None:
        self.metrics.rules_reloads.labels("ok" if result.outcome == "reloaded" else "error").inc()


def _refusal(exc: ContractError, value: bytes | None) -> DeadLetterError:
    """Why a message was refused; a null value (a tombstone) says so, where the parser
    would see an empty message."""
    if value is None:
        return DeadLetterError(kind="not_json", field=None, message="no value (a tombstone)")
    return exc.to_dead_letter_error()


def cases_table(app: faust.App, settings: Settings) -> TableT[Any, Any]:
    """The table of case states, one entry per incident, backed by its changelog."""
    return app.Table(
        CASES_TABLE,
        default=None,
        partitions=settings.partitions,
        # Raw key bytes, so the changelog partitions a key exactly as the input topic does.
        key_type=bytes,
        use_partitioner=True,
    )


def build_app(
    settings: Settings, book: RuleBook, metrics: Metrics | None = None
) -> tuple[faust.App, Shell]:
    """A faust app wired to the engines; the caller runs it with a worker."""
    app = low_latency_app(settings.fetch_wait_ms(), **settings.faust_settings())
    raw = RAW_BYTES
    incidents = app.topic(settings.topic_incidents, partitions=settings.partitions, **raw)
    decisions = app.topic(settings.topic_decisions, partitions=settings.partitions, **raw)
    review = app.topic(settings.topic_review, partitions=settings.partitions, **raw)
    dlq = app.topic(settings.topic_dlq, partitions=settings.partitions, **raw)
    table = cases_table(app, settings)
    store = TableStore(table, settings.partitions)
    shell = Shell(settings, book, store, metrics or Metrics())
    shell.metrics.cases_held = shell.store.held
    shell.announce_rules()
    reloader = RulesReloader(
        book.source.directory, book, on_swap=shell.use_rules, on_result=shell.reload_result
    )

    async def send_review(change: FlagChange) -> None:
        await review.send(key=change.incident_id.encode(), value=change.to_json_bytes())

    async def send_dlq(letter: DeadLetter) -> None:
        # Waits for the broker's acknowledgement, not just the producer's buffer: a
        # dead letter the broker refuses must be seen as lost, not counted as sent.
        # Dead letters are rare, so the wait costs nothing in the normal stream.
        delivered = await dlq.send(key=(letter.key or "").encode(), value=letter.to_json_bytes())
        await delivered

    shell.send_review = send_review
    shell.send_dlq = send_dlq

    @app.agent(incidents, name="cdi-incidents")
    async def process_incidents(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            await shell.on_incident(m.key, m.value, m.topic, m.partition, m.offset, m.timestamp)

    @app.agent(decisions, name="cdi-decisions")
    async def process_decisions(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            await shell.on_decision(m.key, m.value, m.topic, m.partition, m.offset, m.timestamp)

    @app.timer(interval=TICK_SECONDS)  # type: ignore[untyped-decorator]
    async def fire_deadlines() -> None:
        await shell.tick()

    if settings.rules_reload_seconds > 0:

        @app.timer(interval=settings.rules_reload_seconds)  # type: ignore[untyped-decorator]
        async def poll_rules() -> None:
            reloader.check()

    @app.task  # type: ignore[untyped-decorator]
    async def reload_on_sighup() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, reloader.check)

    @table.on_recover
    async def recovered() -> None:
        active = {
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == settings.topic_incidents
        }
        await shell.publish(shell.rebuild(active), new=False)
        log.info(
            "cases recovered: %d partitions, %d deadlines",
            len(active),
            sum(len(e.deadlines) for e in shell.engines.values()),
        )

    return app, shell
