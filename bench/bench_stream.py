"""End-to-end throughput and latency of ``cdi-stream worker`` through a Kafka broker.

The engine's own speed (``bench_replay.py``) says little about the service: a worker
also pays for consuming, committing, writing every case to the table's changelog and
producing flags. This script measures the whole path on one broker, in one run, and
sets it against a baseline that does nothing but move messages, so the cost of the
service can be told apart from the cost of the Kafka client and the broker:

1. Bare loop: an aiokafka consume-and-produce loop copies N pre-published simulated
   events to another topic, no processing. Throughput = N / (first consumed to last
   produced and flushed).
2. Worker: one ``cdi-stream worker`` subprocess drains the same N events. It runs the
   event clock: the simulated dates lie months in the past, so under the wall clock
   every deadline would fall due the moment its incident arrives and the worker would
   raise flags a live stream never sees; with event time it sees the stream as it
   happened. Its start and end of processing are read from the record timestamps of
   the cases table's changelog, which gets a record for every processed event: start =
   the first record, end = the first record holding each partition's last event id.
   End offsets from the local test broker are wrong, so completion is detected from
   the worker group's committed offsets, which are right; they lag processing by up
   to a commit interval, which is why they do not time the run.
3. Latency: a fresh worker (hybrid clock) on fresh topics gets simulated events at a
   fixed rate. The simulated dates lie months in the past, so under the wall clock a
   report that discloses a crime raises a not-recorded flag as soon as it is processed.
   Latency = the flag's arrival on the review topic (and its ``emitted_at``) minus the
   report's publish time, first flag per incident, over the reports that raise a flag
   on their own (found beforehand by running the engine in-process).

Prints the figures; nothing is asserted.

    python bench/bench_stream.py [--events 50000] [--rate 200] [--seconds 30]
        [--repeat 1] [--partitions 4] [--seed 1] [--clock event|hybrid]
        [--bootstrap HOST:PORT]

About 2.5 minutes with the defaults on a 2-core machine (``--repeat 2``: 3.5 to 5).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

from cdi_stream.broker import LocalBroker, committed_offsets, create_topics
from cdi_stream.deployment import PrivateDeployment
from cdi_stream.simulate import SimConfig, write_jsonl
from cdi_stream.stream.tables import partition_for

READY_LINE = b"cases recovered"
COMMIT_POLL_SECONDS = 0.2
STALL_SECONDS = 30.0
LATENCY_TARGET_MS = 250.0
RATIO_TARGET = 0.5


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Event:
    """One simulated event as a message, with what the measurements match on."""

    key: bytes
    value: bytes
    incident_id: str
    event_id: str
    event_type: str


def simulated_events(count: int, seed: int) -> list[Event]:
    """Exactly ``count`` events: the start of a simulated stream long enough to hold them."""
    incidents = max(100, math.ceil(count / 2.5))
    while True:
        buffer = io.BytesIO()
        write_jsonl(SimConfig(seed=seed, incidents=incidents), buffer)
        lines = buffer.getvalue().splitlines()
        if len(lines) >= count:
            break
        incidents = math.ceil(incidents * count / max(len(lines), 1) * 1.05)
    events: list[Event] = []
    for line in lines[:count]:
        data = json.loads(line)
        events.append(
            Event(
                key=data["incident_id"].encode(),
                value=line,
                incident_id=data["incident_id"],
                event_id=data["event_id"],
                event_type=data["event_type"],
            )
        )
    return events


@dataclass
class Published:
    """Where the pre-published events ended up: per partition, the offset after the
    last one and the id of the last event (what the worker must have processed)."""

    topic: str
    count: int
    seconds: float
    ends: dict[int, int] = field(default_factory=dict)
    last_event_ids: dict[int, str] = field(default_factory=dict)
    misplaced: int = 0  # keys the client put elsewhere than the worker's partitioner would


async def publish_fast(
    bootstrap: str, topic: str, events: Sequence[Event], partitions: int
) -> Published:
    """Publish everything as fast as the client can, keyed by incident id."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        t0 = time.perf_counter()
        futures = [await producer.send(topic, e.value, key=e.key) for e in events]
        await producer.flush()
        metadata = await asyncio.gather(*futures)
        seconds = time.perf_counter() - t0
    finally:
        await producer.stop()
    published = Published(topic, len(events), seconds)
    for event, meta in zip(events, metadata, strict=True):
        if meta.partition != partition_for(event.incident_id, partitions):
            published.misplaced += 1
        if meta.offset + 1 > published.ends.get(meta.partition, -1):
            published.ends[meta.partition] = meta.offset + 1
            published.last_event_ids[meta.partition] = event.event_id
    return published


# --------------------------------------------------------------------------- 1. bare loop


async def bare_loop(
    bootstrap: str, source: str, target: str, partitions: int, count: int
) -> tuple[float, float]:
    """Copy ``count`` messages from ``source`` to ``target``; return (events/s, seconds)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        tps = [TopicPartition(source, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        done = 0
        first: float | None = None
        deadline = time.monotonic() + 300
        while done < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"bare loop: only {done} of {count} messages after 300 s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for records in batches.values():
                if first is None and records:
                    first = time.perf_counter()
                for record in records:
                    await producer.send(target, record.value, key=record.key)
                done += len(records)
        await producer.flush()
        assert first is not None
        seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
        await producer.stop()
    return count / seconds, seconds


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class Names(PrivateDeployment):
    """A private deployment per run, so runs never share state."""

    prefix: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:8]}")

    @property
    def changelog(self) -> str:
        return f"{self.group}-cases-changelog"

    def create(self, bootstrap: str, partitions: int) -> None:
        create_topics(bootstrap, {name: partitions for name in self.topics})

    def worker_env(
        self, bootstrap: str, partitions: int, clock: str, data_dir: Path
    ) -> dict[str, str]:
        return self.env(
            bootstrap,
            CDI_PROFILE="local",
            CDI_CLOCK=clock,
            CDI_PARTITIONS=str(partitions),
            # Simulated dates lie months behind the wall clock: keep every case.
            CDI_RETENTION_DAYS="3650",
            CDI_DATA_DIR=str(data_dir),
            CDI_METRICS_PORT="0",
        )


WORKER_COMMAND = (sys.executable, "-m", "cdi_stream.cli", "worker")


class Worker:
    """A ``cdi-stream worker`` subprocess in its own session, its log in a file."""

    def __init__(
        self, env: dict[str, str], workdir: Path, command: Sequence[str] = WORKER_COMMAND
    ) -> None:
        self.log = workdir / "worker.log"
        self._file = self.log.open("wb")
        self.started = time.time()
        self.proc = subprocess.Popen(
            list(command),
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Block until the tables are recovered; return the wall time it happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.log.read_bytes():
                return time.time()
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"worker not ready after {timeout:g} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._file.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_worker(
    env: dict[str, str], command: Sequence[str] = WORKER_COMMAND
) -> Iterator[Worker]:
    with tempfile.TemporaryDirectory(prefix="cdi-bench-worker-") as tmp:
        worker = Worker(env, Path(tmp), command)
        try:
            yield worker
        finally:
            worker.stop()


# --------------------------------------------------------------------------- 2. worker


@dataclass
class WorkerRun:
    events: int
    first_processed: float
    last_processed: float
    ready_after: float
    committed_at: float | None
    cpu_share: float | None
    changelog_records: int
    notes: list[str]

    @property
    def seconds(self) -> float:
        return self.last_processed - self.first_processed

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_for_commits(
    bootstrap: str, group: str, published: Published, timeout: float
) -> tuple[float | None, dict[int, int]]:
    """Poll the group's committed offsets until every partition reaches its end.

    Returns the wall time the last partition got there (None if commits stopped moving
    for ``STALL_SECONDS`` or ``timeout`` passed) and the last offsets seen.
    """
    from kafka.admin import KafkaAdminClient

    admin = await asyncio.to_thread(KafkaAdminClient, bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout
        seen: dict[int, int] = {}
        moved = time.monotonic()
        while time.monotonic() < deadline:
            now = await asyncio.to_thread(
                committed_offsets, admin, group, published.topic, sorted(published.ends)
            )
            if now != seen:
                seen, moved = now, time.monotonic()
            if all(seen.get(p, -1) >= end for p, end in published.ends.items()):
                return time.time(), seen
            if time.monotonic() - moved > STALL_SECONDS and max(seen.values(), default=-1) >= 0:
                return None, seen
            await asyncio.sleep(COMMIT_POLL_SECONDS)
        return None, seen
    finally:
        await asyncio.to_thread(admin.close)


async def changelog_times(
    bootstrap: str, topic: str, partitions: int, last_event_ids: dict[int, str]
) -> tuple[float, float, int, list[str]]:
    """(first record's time, time the last input event of every partition was written,
    number of records).

    A partition whose last event id is never found falls back to its newest record.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    first = math.inf
    count = 0
    found: dict[int, float] = {}
    newest: dict[int, float] = {}
    needles = {p: b'"' + eid.encode() + b'"' for p, eid in last_event_ids.items()}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 2.0:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            if any(batches.values()):
                quiet_since = time.monotonic()
            for tp, records in batches.items():
                count += len(records)
                for record in records:
                    ts = record.timestamp / 1000
                    first = min(first, ts)
                    newest[tp.partition] = max(newest.get(tp.partition, 0.0), ts)
                    needle = needles.get(tp.partition)
                    if (
                        tp.partition not in found
                        and needle is not None
                        and record.value is not None
                        and needle in record.value
                    ):
                        found[tp.partition] = ts
    finally:
        await consumer.stop()
    notes = []
    ends = []
    for p in last_event_ids:
        if p in found:
            ends.append(found[p])
        else:
            notes.append(f"partition {p}: last event not found in the changelog")
            ends.append(newest.get(p, first))
    return first, max(ends), count, notes


async def worker_throughput(
    bootstrap: str,
    published: Published,
    partitions: int,
    clock: str,
    command: Sequence[str] = WORKER_COMMAND,
) -> WorkerRun:
    names = Names(incidents_topic=published.topic)
    names.create(bootstrap, partitions)
    with tempfile.TemporaryDirectory(prefix="cdi-bench-data-") as data:
        env = names.worker_env(bootstrap, partitions, clock, Path(data))
        with running_worker(env, command) as worker:
            ready = await asyncio.to_thread(worker.wait_ready)
            cpu_at_ready = cpu_seconds(worker.proc.pid)
            committed_at, offsets = await wait_for_commits(
                bootstrap, names.group, published, timeout=600
            )
            cpu_share = None
            if cpu_at_ready is not None and (cpu_now := cpu_seconds(worker.proc.pid)):
                cpu_share = (cpu_now - cpu_at_ready) / (time.time() - ready)
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker died:\n{worker.tail()}")
    notes: list[str] = []
    if committed_at is None:
        notes.append(
            f"committed offsets stopped short of the end ({offsets} of {published.ends}); "
            "end of processing taken from the changelog alone"
        )
    first, last, records, missing = await changelog_times(
        bootstrap, names.changelog, partitions, published.last_event_ids
    )
    notes.extend(missing)
    return WorkerRun(
        events=published.count,
        first_processed=first,
        last_processed=last,
        ready_after=ready - worker.started,
        committed_at=committed_at,
        cpu_share=cpu_share,
        changelog_records=records,
        notes=notes,
    )


# --------------------------------------------------------------------------- 3. latency


def reports_that_flag(events: Sequence[Event]) -> set[str]:
    """Incidents whose report raises a flag on its own when evaluated at the wall clock.

    Found with the engine in-process, so the latency is only measured on flags the
    report itself caused (a later event of the incident could raise the first flag of
    an incident whose report raised none).
    """
    from cdi_stream.contract import parse_incident_event
    from cdi_stream.engine import Engine
    from cdi_stream.engine.config import DAY, EngineConfig
    from cdi_stream.rules.book import RuleBook
    from cdi_stream.rules.loader import default_rules_dir

    book = RuleBook.from_directory(default_rules_dir())
    engine = Engine(book, config=EngineConfig(retention=3650 * DAY), wall_clock=time.time)
    engine.advance_to(time.time())
    flagged: set[str] = set()
    for event in events:
        if event.event_type == "incident.reported" and engine.apply(
            parse_incident_event(event.value)
        ):
            flagged.add(event.incident_id)
    return flagged


@dataclass
class LatencyRun:
    published: int
    expected: int
    received: dict[str, float]
    emitted: dict[str, float]
    sent: dict[str, float]
    flag_messages: int
    achieved_rate: float

    def latencies_ms(self, arrival: dict[str, float]) -> list[float]:
        return sorted((arrival[i] - self.sent[i]) * 1000 for i in arrival if i in self.sent)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def collect_flags(
    bootstrap: str,
    topic: str,
    partitions: int,
    first_flag: dict[str, float],
    emitted: dict[str, float],
    counter: list[int],
    stop: asyncio.Event,
) -> None:
    """Record, per incident, when its first flag arrived and its ``emitted_at``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=20)
            arrived = time.time()
            for records in batches.values():
                for record in records:
                    counter[0] += 1
                    flag = json.loads(record.value or b"{}")
                    incident = flag.get("incident_id")
                    if incident and incident not in first_flag:
                        first_flag[incident] = arrived
                        emitted[incident] = parse_time(flag["emitted_at"])
    finally:
        await consumer.stop()


async def latency(
    bootstrap: str, partitions: int, rate: float, seconds: float, seed: int
) -> LatencyRun:
    events = simulated_events(max(1, round(rate * seconds)), seed)
    expected = reports_that_flag(events)
    names = Names()
    names.create(bootstrap, partitions)
    first_flag: dict[str, float] = {}
    emitted: dict[str, float] = {}
    sent: dict[str, float] = {}
    counter = [0]
    with tempfile.TemporaryDirectory(prefix="cdi-bench-data-") as data:
        env = names.worker_env(bootstrap, partitions, "hybrid", Path(data))
        with running_worker(env) as worker:
            await asyncio.to_thread(worker.wait_ready)
            await asyncio.sleep(1.0)  # a few clock ticks: the engine's time is now the wall's
            stop = asyncio.Event()
            reader = asyncio.create_task(
                collect_flags(
                    bootstrap, names.review, partitions, first_flag, emitted, counter, stop
                )
            )
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
            await producer.start()
            try:
                await asyncio.sleep(0.5)  # let the reader's first fetch start
                start = time.perf_counter()
                for n, event in enumerate(events):
                    delay = start + n / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if event.event_type == "incident.reported":
                        sent[event.incident_id] = time.time()
                    await producer.send(names.incidents, event.value, key=event.key)
                achieved = len(events) / (time.perf_counter() - start)
                await producer.flush()
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and not expected <= first_flag.keys():
                    if reader.done():
                        break
                    await asyncio.sleep(0.1)
            finally:
                await producer.stop()
                stop.set()
                await reader
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker died:\n{worker.tail()}")
    received = {i: t for i, t in first_flag.items() if i in expected}
    emitted_expected = {i: t for i, t in emitted.items() if i in expected}
    return LatencyRun(
        published=len(events),
        expected=len(expected),
        received=received,
        emitted=emitted_expected,
        sent=sent,
        flag_messages=counter[0],
        achieved_rate=achieved,
    )


# --------------------------------------------------------------------------- report


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def describe(values: Sequence[float]) -> str:
    return (
        f"p50 {percentile(values, 0.50):.1f}  p95 {percentile(values, 0.95):.1f}  "
        f"p99 {percentile(values, 0.99):.1f}  max {percentile(values, 1.0):.1f} ms"
    )


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f", {int(line.split()[1]) / 1024**2:.0f} GiB RAM"
    return f"{model}, {os.cpu_count()} cores{ram}, Python {platform.python_version()}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def run(args: argparse.Namespace, bootstrap: str, broker_name: str) -> None:
    print(f"machine: {machine()}")
    print(f"broker: {broker_name} at {bootstrap}; {args.partitions} partitions per topic")

    t0 = time.perf_counter()
    events = simulated_events(args.events, args.seed)
    print(
        f"simulated {len(events):,} events (seed {args.seed}) in {time.perf_counter() - t0:.1f} s"
    )
    source = Names()
    bare_target = f"{source.prefix}.copy"
    create_topics(bootstrap, {source.incidents: args.partitions, bare_target: args.partitions})
    published = await publish_fast(bootstrap, source.incidents, events, args.partitions)
    print(
        f"published {published.count:,} events in {published.seconds:.1f} s "
        f"({published.count / published.seconds:,.0f}/s); per partition "
        + ", ".join(f"{p}: {n:,}" for p, n in sorted(published.ends.items()))
        + (f"; {published.misplaced} keys on unexpected partitions" if published.misplaced else "")
    )
    del events

    bare: list[float] = []
    workers: list[WorkerRun] = []
    for attempt in range(1, args.repeat + 1):
        target = bare_target if attempt == 1 else f"{bare_target}{attempt}"
        if attempt > 1:
            create_topics(bootstrap, {target: args.partitions})
        rate, secs = await bare_loop(
            bootstrap, source.incidents, target, args.partitions, published.count
        )
        bare.append(rate)
        print(f"[{attempt}] bare aiokafka loop: {rate:,.0f} events/s ({secs:.2f} s)")
        w = await worker_throughput(bootstrap, published, args.partitions, args.clock)
        workers.append(w)
        commit = (
            f"; offsets all committed {w.committed_at - w.last_processed:.1f} s after the last"
            if w.committed_at is not None
            else ""
        )
        cpu = "" if w.cpu_share is None else f"; worker CPU {w.cpu_share:.0%} of a core"
        print(
            f"[{attempt}] cdi-stream worker ({args.clock} clock): {w.rate:,.0f} events/s "
            f"({w.seconds:.2f} s; ready {w.ready_after:.1f} s after launch{commit}{cpu}; "
            f"{w.changelog_records:,} changelog records)"
        )
        for note in w.notes:
            print(f"    note: {note}")

    lat: LatencyRun | None = None
    if args.seconds > 0:
        print(f"latency: {args.rate:g} events/s for {args.seconds:g} s, hybrid clock ...")
        lat = await latency(bootstrap, args.partitions, args.rate, args.seconds, args.seed)

    best_bare = max(bare)
    best_worker = max(workers, key=lambda w: w.rate)
    ratio = best_worker.rate / best_bare
    print()
    print("=" * 72)
    print(f"machine        {machine()}")
    print(f"broker         {broker_name}, {args.partitions} partitions")
    print(f"events         {published.count:,} simulated (seed {args.seed}), pre-published")
    runs = f"best of {args.repeat}" if args.repeat > 1 else "1 run"
    print(
        f"bare loop      {best_bare:,.0f} events/s ({runs}: "
        + ", ".join(f"{r:,.0f}" for r in bare)
        + ")"
    )
    print(
        f"worker         {best_worker.rate:,.0f} events/s ({runs}: "
        + ", ".join(f"{w.rate:,.0f}" for w in workers)
        + f"), {args.clock} clock"
    )
    print(
        f"ratio          {ratio:.2f} of the bare loop; "
        f"target >= {RATIO_TARGET:.2f}: {met(ratio >= RATIO_TARGET)}"
    )
    if lat is not None:
        arrival = lat.latencies_ms(lat.received)
        emission = lat.latencies_ms(lat.emitted)
        p99 = percentile(arrival, 0.99)
        print(
            f"latency        {lat.published:,} events at {lat.achieved_rate:.0f}/s, hybrid clock; "
            f"first flags of {len(arrival):,} of {lat.expected:,} flagging reports "
            f"({lat.flag_messages:,} flag messages in all)"
        )
        print(f"  publish -> flag received   {describe(arrival)}")
        print(f"  publish -> flag emitted_at {describe(emission)}")
        print(
            f"  target p99 < {LATENCY_TARGET_MS:.0f} ms: "
            f"{met(len(arrival) == lat.expected and p99 < LATENCY_TARGET_MS)}"
            + ("" if len(arrival) == lat.expected else " (flags missing)")
        )
    print("=" * 72)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="throughput events")
    parser.add_argument("--rate", type=float, default=200.0, help="latency run events/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="latency run length, 0: skip")
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs; best is kept")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--clock",
        choices=("event", "hybrid"),
        default="event",
        help="the throughput worker's clock",
    )
    parser.add_argument("--bootstrap", help="use this broker instead of a local one")
    run_on_broker(run, parser.parse_args())


def run_on_broker(
    run: Callable[[argparse.Namespace, str, str], Coroutine[Any, Any, None]],
    args: argparse.Namespace,
) -> None:
    """``run(args, bootstrap, broker name)`` on ``args.bootstrap`` or on a local broker
    started for it and stopped after; SIGTERM unwinds like Ctrl-C, so the worker
    subprocesses are stopped too."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    broker: LocalBroker | None = None
    try:
        if args.bootstrap:
            bootstrap, name = args.bootstrap, "external broker"
        else:
            broker = LocalBroker().start()
            bootstrap, name = broker.bootstrap, "local Tansu (in memory)"
        asyncio.run(run(args, bootstrap, name))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        if broker is not None:
            broker.cleanup()


if __name__ == "__main__":
    main()
