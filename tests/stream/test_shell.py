"""The streaming shell without a broker: decoding, clocks, dead letters, recovery."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from cdi_stream.contract import DeadLetter, FlagChange
from cdi_stream.engine import Engine
from cdi_stream.rules.book import RuleBook
from cdi_stream.settings import load_settings
from cdi_stream.stream.app import Shell
from cdi_stream.stream.tables import PartitionedDeadlines, TableStore, partition_for
from tests.engine.scenario import Incident


class Captured:
    def __init__(self) -> None:
        self.review: list[FlagChange] = []
        self.dlq: list[DeadLetter] = []

    async def send_review(self, change: FlagChange) -> None:
        self.review.append(change)

    async def send_dlq(self, letter: DeadLetter) -> None:
        self.dlq.append(letter)


def make_shell(
    book: RuleBook, table: dict[Any, Any], clock: str = "event"
) -> tuple[Shell, Captured]:
    settings = load_settings(clock=clock, partitions=4, max_message_bytes=2048)
    deadlines = PartitionedDeadlines(4)
    store = TableStore(table)
    engine = Engine(book, store=store, deadlines=deadlines, config=settings.engine_config())
    shell = Shell(settings, engine, store, deadlines)
    captured = Captured()
    shell.send_review = captured.send_review
    shell.send_dlq = captured.send_dlq
    return shell, captured


def feed(shell: Shell, events: list[dict[str, Any]]) -> None:
    async def go() -> None:
        for i, e in enumerate(events):
            await shell.on_incident(e["incident_id"].encode(), json.dumps(e).encode(), "in", 0, i)

    asyncio.run(go())


def test_event_clock_fires_deadlines_only_as_event_time_passes(book: RuleBook) -> None:
    shell, out = make_shell(book, {}, clock="event")
    feed(shell, Incident().reported(0).events)
    asyncio.run(shell.tick())
    assert out.review == []  # the wall clock is months later, but it does not count
    feed(shell, Incident("INC-2").reported(30).events)
    asyncio.run(shell.tick())
    assert [c.finding for c in out.review if c.incident_id == "INC-1"][-1] == "crime_not_recorded"


def test_hybrid_clock_fires_deadlines_by_the_wall_clock(book: RuleBook) -> None:
    shell, out = make_shell(book, {}, clock="hybrid")
    feed(shell, Incident().reported(0).events)
    asyncio.run(shell.tick())
    assert "crime_not_recorded" in {c.finding for c in out.review}
    assert shell.engine.now is not None and shell.engine.now >= time.time() - 5


def test_bad_input_becomes_dead_letters_and_the_stream_goes_on(book: RuleBook) -> None:
    shell, out = make_shell(book, {})

    async def go() -> None:
        await shell.on_incident(b"k", b"{nope", "in", 1, 7)
        await shell.on_incident(b"k", b"x" * 3000, "in", 1, 8)
        await shell.on_incident(None, None, "in", 1, 9)

    asyncio.run(go())
    feed(shell, Incident().reported(0).closed(1, "non_crime", "x").events)
    assert [d.error.kind for d in out.dlq] == ["not_json", "too_large", "not_json"]
    assert (out.dlq[0].topic, out.dlq[0].partition, out.dlq[0].offset) == ("in", 1, 7)
    assert [c.finding for c in out.review] == ["crime_not_recorded"]
    assert shell.counts["dlq.not_json"] == 2


def test_a_repeated_event_republishes_the_same_revisions(book: RuleBook) -> None:
    shell, out = make_shell(book, {})
    events = Incident().reported(0).closed(1, "non_crime", "x").events
    feed(shell, events)
    first = [(c.flag_id, c.revision, c.status) for c in out.review]
    feed(shell, events[-1:])
    again = [(c.flag_id, c.revision, c.status) for c in out.review[len(first) :]]
    assert again == first
    assert shell.counts["duplicates"] == 1


def test_recovery_rebuilds_deadlines_of_owned_partitions_from_the_table(book: RuleBook) -> None:
    table: dict[bytes, Any] = {}
    shell, _ = make_shell(book, table)
    ids = [f"INC-{i}" for i in range(12)]
    for incident_id in ids:
        feed(shell, Incident(incident_id).reported(0).events)
    owned = {0, 1}
    # What a new worker recovers from the changelog: the same keys, JSON-decoded values.
    recovered = {key: json.loads(json.dumps(value)) for key, value in table.items()}
    restarted, out = make_shell(book, recovered)
    republished = restarted.rebuild(owned)
    mine = [i for i in ids if partition_for(i, 4) in owned]
    assert len(restarted.deadlines) == len(mine)
    assert {c.incident_id for c in republished} <= set(mine)
    assert out.review == []


def test_decision_for_an_unknown_flag_is_a_dead_letter(book: RuleBook) -> None:
    shell, out = make_shell(book, {})
    body = {
        "decision_id": "D1",
        "flag_id": "flag-000000000000000000000000",
        "incident_id": "INC-1",
        "decision": "upheld",
        "reason": "r",
        "decided_at": "2026-01-05T10:00:00Z",
        "ddm_ref": "DDM-1",
    }
    asyncio.run(shell.on_decision(b"INC-1", json.dumps(body).encode(), "dec", 0, 3))
    assert [d.error.kind for d in out.dlq] == ["unknown_flag"]


@pytest.mark.parametrize("key", ["INC-1", "INC-20260105-000010", "x"])
def test_partition_for_matches_kafka_python(key: str) -> None:
    from aiokafka.partitioner import DefaultPartitioner

    # faust produces the changelog with aiokafka's partitioner; the input topic's
    # producers use the same murmur2 scheme.
    every = list(range(8))
    assert partition_for(key, 8) == DefaultPartitioner()(key.encode(), every, every)
