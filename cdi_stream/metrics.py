"""Prometheus metrics: what operations staff watch, and the figures an inspection computes.

One :class:`Metrics` object per process, with its own registry, so a test or a replay
can hold several without clashing with the global default registry.

Semantics and limits:

* No label ever carries an incident, crime, person or flag identifier: labels are
  event types, dead-letter kinds, findings, statuses, priorities, partitions, rule
  editions and the rules' content hash, all from small fixed sets.
* Counters count what this process did since it started; Prometheus's ``rate`` and
  ``increase`` make them continuous across restarts. The gauges of current state (open
  flags, open deadlines) are rebuilt from the case table after every recovery, so they
  are right after a restart or rebalance, and cover only the partitions this worker
  owns: sum them over workers. An incident dropped at the end of its retention period
  takes its flags and deadlines out of the gauges with it.
* ``cdi_crimes_recorded_in_time_total`` and ``..._late_total`` count each subject (a
  victim, or a state-based offence) once, when its first crime record is seen; the
  share recorded within 24 hours is ``in_time / (in_time + late)``. A record made in
  time, cancelled and made again after the deadline counts as in time here and as late
  in ``cdi-stream report``, which judges with the whole history.
* ``cdi_time_to_record_seconds`` measures from the subject's clock start (the report,
  or a later first disclosure) to its first record; a record made before the clock
  started counts as zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Final

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cdi_stream.contract import FlagChange

__all__ = ["RECORD_BUCKETS_HOURS", "Metrics"]

HOUR: Final = 3600.0
RECORD_BUCKETS_HOURS: Final = (1, 2, 4, 8, 12, 16, 20, 24, 36, 48, 72, 168)
LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
EVALUATION_BUCKETS: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.05,
    0.25,
)


class Metrics:
    """Every metric cdi-stream exports; also the engine's observer."""

    def __init__(
        self, *, wall_clock: Callable[[], float] = time.time, process: bool = False
    ) -> None:
        """``process`` adds the standard process, platform and GC collectors."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._wall = wall_clock
        self._lock = threading.Lock()
        # Open flags by incident, so an incident's flags leave with its state.
        # incident -> flag id -> (finding, priority, event time of the open revision)
        self._open_flags: dict[str, dict[str, tuple[str, str, float]]] = {}
        self._deadlines: dict[str, tuple[float, ...]] = {}
        self._watermarks: dict[int, float] = {}
        self.cases_held: Callable[[], int] | None = None
        reg = self.registry
        if process:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                reg.register(collector)
        self.events = Counter(
            "cdi_events_consumed",
            "Incident events and DDM decisions consumed and accepted, by event type.",
            ["event_type"],
            registry=reg,
        )
        self.duplicates = Counter(
            "cdi_duplicate_events",
            "Incident events ignored because their event_id was already applied: "
            "redeliveries after a restart, or a producer reusing an id (its content unread).",
            registry=reg,
        )
        self.dead_letters = Counter(
            "cdi_dead_letters",
            "Messages sent to the dead-letter topic (rejected lines in a replay), by kind.",
            ["kind"],
            registry=reg,
        )
        self.dead_letters_lost = Counter(
            "cdi_dead_letters_lost",
            "Messages that could not be used and could not be sent to the dead-letter "
            "topic either (the log names where each still is), by kind.",
            ["kind"],
            registry=reg,
        )
        self.flag_changes = Counter(
            "cdi_flag_changes",
            "Flag changes published to the DDM review topic.",
            ["finding", "status", "priority"],
            registry=reg,
        )
        self.warnings = Counter(
            "cdi_deadline_warnings",
            "Deadline warnings given (each 12-hour and 20-hour warning).",
            registry=reg,
        )
        self.breaches = Counter(
            "cdi_deadline_breaches",
            "Subjects whose 24-hour recording deadline passed with no crime recorded.",
            registry=reg,
        )
        self.in_time = Counter(
            "cdi_crimes_recorded_in_time",
            "Subjects first recorded at or before their deadline.",
            registry=reg,
        )
        self.late = Counter(
            "cdi_crimes_recorded_late",
            "Subjects first recorded after their deadline.",
            registry=reg,
        )
        self.time_to_record = Histogram(
            "cdi_time_to_record_seconds",
            "Time from a subject's clock start (the report) to its first crime record.",
            buckets=[h * HOUR for h in RECORD_BUCKETS_HOURS],
            registry=reg,
        )
        self.latency = Histogram(
            "cdi_publish_to_flag_seconds",
            "Time from an event's publication to the flag changes it caused being sent.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.evaluation = Histogram(
            "cdi_rule_evaluation_seconds",
            "Time to evaluate one incident against the rules.",
            buckets=EVALUATION_BUCKETS,
            registry=reg,
        )
        self.rules_info = Gauge(
            "cdi_rules_info",
            "The rules loaded: one series per edition, with the rules' content hash.",
            ["edition", "hash"],
            registry=reg,
        )
        self.rules_loaded = Gauge(
            "cdi_rules_loaded_timestamp_seconds",
            "When the rules in use were loaded.",
            registry=reg,
        )
        self.rules_reloads = Counter(
            "cdi_rules_reloads",
            "Attempts to reload a changed rules directory, by result (ok or error).",
            ["result"],
            registry=reg,
        )
        self.assigned = Gauge(
            "cdi_assigned_partitions",
            "Input partitions this worker owns.",
            registry=reg,
        )
        self.rebalances = Counter(
            "cdi_rebalances",
            "Partition assignments this worker completed (start-up included).",
            registry=reg,
        )
        for result in ("ok", "error"):
            self.rules_reloads.labels(result)
        reg.register(_StateCollector(self))

    # -- the engine's observer ---------------------------------------------------------

    def evaluated(self, seconds: float) -> None:
        self.evaluation.observe(seconds)

    def recorded(self, seconds_to_record: float, in_time: bool) -> None:
        (self.in_time if in_time else self.late).inc()
        self.time_to_record.observe(seconds_to_record)

    def breached(self) -> None:
        self.breaches.inc()

    def open_deadlines(self, incident_id: str, due: Collection[float]) -> None:
        with self._lock:
            if due:
                self._deadlines[incident_id] = tuple(due)
            else:
                self._deadlines.pop(incident_id, None)

    def dropped(self, incident_id: str) -> None:
        with self._lock:
            self._deadlines.pop(incident_id, None)
            self._open_flags.pop(incident_id, None)

    # -- what the drivers report ------------------------------------------------------

    def consumed(self, event_type: str) -> None:
        self.events.labels(event_type).inc()

    def duplicate(self, count: int = 1) -> None:
        self.duplicates.inc(count)

    def dead_letter(self, kind: str) -> None:
        self.dead_letters.labels(kind).inc()

    def dead_letter_lost(self, kind: str) -> None:
        self.dead_letters_lost.labels(kind).inc()

    def flags_changed(self, changes: Iterable[FlagChange], *, decided: bool = False) -> None:
        """Count published changes; ``decided`` ones record a DDM decision, so a
        warning among them is not a warning issued."""
        with self._lock:
            for change in changes:
                self.flag_changes.labels(change.finding, change.status, change.priority).inc()
                flags = self._open_flags.setdefault(change.incident_id, {})
                if change.status == "open":
                    at = change.event_time.timestamp()
                    before = flags.get(change.flag_id)
                    flags[change.flag_id] = (change.finding, change.priority, at)
                    # A warning is given when raised and when its moment moves (12 h to
                    # 20 h); a revision that only corrects it gives none.
                    if (
                        change.finding == "deadline_warning"
                        and not decided
                        and (before is None or before[2] != at)
                    ):
                        self.warnings.inc()
                else:
                    flags.pop(change.flag_id, None)
                if not flags:
                    del self._open_flags[change.incident_id]

    def published(self, published_at: float) -> None:
        """Flags caused by an event published at ``published_at`` were just sent."""
        self.latency.observe(max(0.0, self._wall() - published_at))

    def watermark(self, partition: int, event_time: float) -> None:
        if event_time > self._watermarks.get(partition, 0.0):
            self._watermarks[partition] = event_time

    def rules_loaded_now(self, editions: Iterable[str], content_hash: str) -> None:
        self.rules_info.clear()
        for edition in editions:
            self.rules_info.labels(edition, content_hash).set(1)
        self.rules_loaded.set(self._wall())

    def reset_state(
        self,
        open_flags: Iterable[FlagChange],
        deadlines: Iterable[tuple[str, Collection[float]]],
        partitions: Collection[int],
    ) -> None:
        """After a recovery: the current state of the partitions now owned, and no other."""
        flags: dict[str, dict[str, tuple[str, str, float]]] = {}
        for c in open_flags:
            if c.status == "open":
                flags.setdefault(c.incident_id, {})[c.flag_id] = (
                    c.finding,
                    c.priority,
                    c.event_time.timestamp(),
                )
        dues = {incident_id: tuple(d) for incident_id, d in deadlines if d}
        with self._lock:
            self._open_flags = flags
            self._deadlines = dues
            self._watermarks = {p: t for p, t in self._watermarks.items() if p in partitions}
        self.assigned.set(len(partitions))
        self.rebalances.inc()

    # -- export --------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def write(self, path: Path | str) -> None:
        Path(path).write_bytes(self.exposition())

    def serve(self, port: int, host: str) -> None:
        """Serve ``/metrics`` on a daemon thread (prometheus-client's own server)."""
        start_http_server(port, addr=host, registry=self.registry)

    # -- the state gauges, computed when scraped -----------------------------------------

    def _state(
        self,
    ) -> tuple[dict[tuple[str, str], int], int, float, dict[int, float], int | None]:
        wall = self._wall()
        held = self.cases_held() if self.cases_held is not None else None
        with self._lock:
            by_label: dict[tuple[str, str], int] = {}
            for flags in self._open_flags.values():
                for finding, priority, _ in flags.values():
                    label = (finding, priority)
                    by_label[label] = by_label.get(label, 0) + 1
            # The engine closes a deadline when it passes (it wakes the case at its due
            # time), so every due time held here is still open.
            dues = [d for ds in self._deadlines.values() for d in ds]
            lags = {p: max(0.0, wall - t) for p, t in self._watermarks.items()}
        return by_label, len(dues), min(dues, default=0.0), lags, held


class _StateCollector(Collector):
    """Gauges derived from the state at scrape time, so they can never drift from it."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families({}, 0, 0.0, {}, 0))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families(*self._metrics._state()))

    @staticmethod
    def _families(
        flags: dict[tuple[str, str], int],
        open_dues: int,
        next_due: float,
        lags: dict[int, float],
        held: int | None,
    ) -> list[GaugeMetricFamily]:
        open_flags = GaugeMetricFamily(
            "cdi_open_flags",
            "Flags open now, by finding and priority.",
            labels=["finding", "priority"],
        )
        for (finding, priority), n in sorted(flags.items()):
            open_flags.add_metric([finding, priority], n)
        deadlines = GaugeMetricFamily(
            "cdi_open_deadlines",
            "Subjects awaiting a crime record whose 24-hour deadline has not passed.",
            value=open_dues,
        )
        next_deadline = GaugeMetricFamily(
            "cdi_next_deadline_timestamp_seconds",
            "The earliest open recording deadline (unix time); 0 when none is open.",
            value=next_due,
        )
        lag = GaugeMetricFamily(
            "cdi_watermark_lag_seconds",
            "How far the latest event time seen on a partition is behind the wall clock.",
            labels=["partition"],
        )
        for partition, seconds in sorted(lags.items()):
            lag.add_metric([str(partition)], seconds)
        families = [open_flags, deadlines, next_deadline, lag]
        if held is not None:
            families.append(
                GaugeMetricFamily(
                    "cdi_cases_held",
                    "Incidents whose case state this worker holds (open, or closed and "
                    "within the retention period).",
                    value=held,
                )
            )
        return families
