"""The faust application: topics in, the engine in the middle, flags and dead letters out.

Everything here is plumbing. Rule logic lives in the engine; this module only decodes
messages, feeds them to the engine with the right clock, sends what the engine
returns, and keeps the engine's state in changelog-backed tables.

Semantics and limits:

* At least once. An input offset is committed only after its event was processed;
  a worker that dies reprocesses from the last commit. A repeated event changes no
  state, but its incident's flags are republished with the ids and revisions they
  already have, so a message lost in the crash reaches the review topic after all.
  After a rebalance or restart every flag of the partitions taken over is republished
  the same way (deadline firings are not tied to an input offset).
* Time. ``hybrid``: a timer moves the engine to the later of the wall clock and the
  highest event time seen, so deadlines fire on time when no events arrive and a
  stream with compressed event time still drives them. ``event``: only event time
  moves the clock (replays). One clock per worker: event time seen on any of its
  partitions advances deadlines on all of them.
* Bad input never stops a worker: it goes to the dead letter topic with the original
  bytes and a structured reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust

from cdi_stream.contract import (
    ContractError,
    DeadLetter,
    DeadLetterError,
    FlagChange,
    parse_decision,
    parse_incident_event,
)
from cdi_stream.engine import Engine, EngineError, UnknownFlag
from cdi_stream.rules.book import RuleBook
from cdi_stream.settings import Settings
from cdi_stream.stream.tables import PartitionedDeadlines, TableStore, partition_for

log = logging.getLogger(__name__)

CASES_TABLE = "cases"
TICK_SECONDS = 0.2


def changelog_topic(settings: Settings) -> str:
    """faust's name for the cases table's changelog (created before the app starts)."""
    return f"{settings.consumer_group}-{CASES_TABLE}-changelog"


@dataclass
class Shell:
    """The state the agents share: one engine per worker, and its clock inputs."""

    settings: Settings
    engine: Engine
    store: TableStore
    deadlines: PartitionedDeadlines
    send_review: Callable[[FlagChange], Awaitable[None]] | None = None
    send_dlq: Callable[[DeadLetter], Awaitable[None]] | None = None
    watermark: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    async def on_incident(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int
    ) -> None:
        raw = value or b""
        try:
            event = parse_incident_event(raw, max_bytes=self.settings.max_message_bytes)
        except ContractError as exc:
            await self.dead_letter(key, raw, exc.to_dead_letter_error(), topic, partition, offset)
            return
        self.count("events")
        if self.engine.is_duplicate(event):
            self.count("duplicates")
            await self.publish(self.engine.current_flags(event.incident_id))
            return
        self.watermark = max(self.watermark, event.occurred_at.timestamp())
        try:
            changes = self.engine.apply(event)
        except EngineError as exc:
            error = DeadLetterError(kind="incident_limit", field=None, message=str(exc))
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        except Exception as exc:  # a bug must not stop the partition: park the event
            log.exception("engine failed on %s/%s@%s", topic, partition, offset)
            error = DeadLetterError(kind="engine_error", field=None, message=repr(exc)[:500])
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        await self.publish(changes)

    async def on_decision(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int
    ) -> None:
        raw = value or b""
        try:
            decision = parse_decision(raw, max_bytes=self.settings.max_message_bytes)
            changes = self.engine.decide(decision)
        except ContractError as exc:
            await self.dead_letter(key, raw, exc.to_dead_letter_error(), topic, partition, offset)
            return
        except UnknownFlag as exc:
            error = DeadLetterError(kind="unknown_flag", field="flag_id", message=str(exc))
            await self.dead_letter(key, raw, error, topic, partition, offset)
            return
        self.count("decisions")
        await self.publish(changes)

    async def tick(self) -> None:
        """Fire what is due: by the wall clock (hybrid) or by event time alone."""
        target = self.watermark
        if self.settings.clock == "hybrid":
            target = max(target, time.time())
        if target <= 0:
            return
        try:
            changes = self.engine.advance_to(target, inclusive=True)
        except Exception:  # keep the timer alive: the next tick retries
            log.exception("firing deadlines up to %s failed", target)
            self.count("tick_errors")
            return
        await self.publish(changes)

    async def publish(self, changes: list[FlagChange]) -> None:
        if not changes:
            return
        assert self.send_review is not None
        for change in changes:
            await self.send_review(change)
        self.count("flag_changes", len(changes))

    async def dead_letter(
        self,
        key: bytes | None,
        value: bytes,
        error: DeadLetterError,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        self.count(f"dlq.{error.kind}")
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
        await self.send_dlq(letter)

    def rebuild(self, active: set[int]) -> list[FlagChange]:
        """After recovery: rebuild the deadline heaps of the partitions this worker owns
        and collect their flags for republishing."""
        self.store.forget_cache()
        self.deadlines.keep_only(active)
        republish: list[FlagChange] = []
        for incident_id in self.store:
            if partition_for(incident_id, self.settings.partitions) not in active:
                continue
            state = self.store.get(incident_id)
            if state is None:
                continue
            self.deadlines.schedule(incident_id, state.wakeup)
            self.watermark = max(self.watermark, state.last_event_at)
            republish.extend(self.engine.current_flags(incident_id))
        return republish


def build_app(settings: Settings, book: RuleBook) -> tuple[faust.App, Shell]:
    """A faust app wired to one engine; the caller runs it with a worker."""
    options = settings.faust_settings()
    options.setdefault("web_enabled", False)
    app = faust.App(**options)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    incidents = app.topic(settings.topic_incidents, partitions=settings.partitions, **raw)
    decisions = app.topic(settings.topic_decisions, partitions=settings.partitions, **raw)
    review = app.topic(settings.topic_review, partitions=settings.partitions, **raw)
    dlq = app.topic(settings.topic_dlq, partitions=settings.partitions, **raw)
    table = app.Table(
        CASES_TABLE,
        default=None,
        partitions=settings.partitions,
        # Raw key bytes, so the changelog partitions a key exactly as the input topic does.
        key_type=bytes,
        use_partitioner=True,
    )
    deadlines = PartitionedDeadlines(settings.partitions)
    store = TableStore(table)
    engine = Engine(
        book,
        store=store,
        deadlines=deadlines,
        config=settings.engine_config(),
        wall_clock=time.time,
    )
    shell = Shell(settings, engine, store, deadlines)

    async def send_review(change: FlagChange) -> None:
        await review.send(key=change.incident_id.encode(), value=change.to_json_bytes())

    async def send_dlq(letter: DeadLetter) -> None:
        await dlq.send(key=(letter.key or "").encode(), value=letter.to_json_bytes())

    shell.send_review = send_review
    shell.send_dlq = send_dlq

    @app.agent(incidents, name="cdi-incidents")
    async def process_incidents(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            await shell.on_incident(m.key, m.value, m.topic, m.partition, m.offset)

    @app.agent(decisions, name="cdi-decisions")
    async def process_decisions(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            await shell.on_decision(m.key, m.value, m.topic, m.partition, m.offset)

    @app.timer(interval=TICK_SECONDS)  # type: ignore[untyped-decorator]
    async def fire_deadlines() -> None:
        await shell.tick()

    @table.on_recover
    async def recovered() -> None:
        active = {
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == settings.topic_incidents
        }
        await shell.publish(shell.rebuild(active))
        log.info("cases recovered: %d partitions, %d deadlines", len(active), len(deadlines))

    return app, shell
