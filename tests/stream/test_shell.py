"""The streaming shell without a broker: decoding, clocks, dead letters, recovery."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import pytest

from cdi_stream.contract import DEAD_LETTER_MAX_BYTES, DeadLetter, FlagChange
from cdi_stream.metrics import Metrics
from cdi_stream.rules.book import RuleBook
from cdi_stream.settings import load_settings
from cdi_stream.stream.app import Shell
from cdi_stream.stream.tables import TableStore, partition_for
from tests.engine.scenario import T0, Incident


class Captured:
    def __init__(self) -> None:
        self.review: list[FlagChange] = []
        self.dlq: list[DeadLetter] = []

    async def send_review(self, change: FlagChange) -> None:
        self.review.append(change)

    async def send_dlq(self, letter: DeadLetter) -> None:
        self.dlq.append(letter)


def make_shell(
    book: RuleBook, table: dict[Any, Any], clock: str = "event", **overrides: Any
) -> tuple[Shell, Captured]:
    options: dict[str, Any] = {"partitions": 4, "max_message_bytes": 2048, **overrides}
    settings = load_settings(clock=clock, **options)
    store = TableStore(table, 4)
    shell = Shell(settings, book, store, Metrics())
    captured = Captured()
    shell.send_review = captured.send_review
    shell.send_dlq = captured.send_dlq
    return shell, captured


def feed(shell: Shell, events: list[dict[str, Any]]) -> None:
    """Each event on its incident's partition, as a producer keyed by incident id puts it."""

    async def go() -> None:
        for i, e in enumerate(events):
            p = partition_for(e["incident_id"], shell.settings.partitions)
            await shell.on_incident(e["incident_id"].encode(), json.dumps(e).encode(), "in", p, i)

    asyncio.run(go())


def test_event_clock_fires_deadlines_only_as_event_time_passes(book: RuleBook) -> None:
    shell, out = make_shell(book, {}, clock="event")
    feed(shell, Incident().reported(0).events)
    asyncio.run(shell.tick())
    assert out.review == []  # the wall clock is months later, but it does not count
    feed(shell, Incident(neighbour("INC-1")).reported(30).events)
    asyncio.run(shell.tick())
    assert [c.finding for c in out.review if c.incident_id == "INC-1"][-1] == "crime_not_recorded"


def test_hybrid_clock_fires_deadlines_by_the_wall_clock(book: RuleBook) -> None:
    shell, out = make_shell(book, {}, clock="hybrid")
    feed(shell, Incident().reported(0).events)
    asyncio.run(shell.tick())
    assert "crime_not_recorded" in {c.finding for c in out.review}
    now = shell.now()
    assert now is not None and now >= time.time() - 5


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
    assert sample(shell, "cdi_dead_letters_total", kind="not_json") == 2
    assert sample(shell, "cdi_dead_letters_total", kind="too_large") == 1


def test_a_repeated_event_republishes_the_same_revisions(book: RuleBook) -> None:
    shell, out = make_shell(book, {})
    events = Incident().reported(0).closed(1, "non_crime", "x").events
    feed(shell, events)
    first = [(c.flag_id, c.revision, c.status) for c in out.review]
    feed(shell, events[-1:])
    again = [(c.flag_id, c.revision, c.status) for c in out.review[len(first) :]]
    assert again == first
    assert sample(shell, "cdi_events_consumed_total", event_type="incident.closed") == 1
    assert total(shell, "cdi_flag_changes_total") == len(first), "republished, not counted"
    assert sample(shell, "cdi_duplicate_events_total") == 1


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
    assert sorted(restarted.engines) == [0, 1]
    assert sum(len(e.deadlines) for e in restarted.engines.values()) == len(mine)
    assert {c.incident_id for c in republished} <= set(mine)
    assert out.review == []
    # The state gauges cover exactly the partitions owned now.
    assert sample(restarted, "cdi_open_deadlines") == len(mine)
    assert sample(restarted, "cdi_next_deadline_timestamp_seconds") == T0.timestamp() + 86400
    assert sample(restarted, "cdi_assigned_partitions") == 2
    # The table still holds every case; only the owned partitions' count as held.
    assert len(recovered) == len(ids)
    restarted.metrics.cases_held = restarted.store.held
    assert sample(restarted, "cdi_cases_held") == len(mine) < len(ids)
    newcomer = next(f"NEW-{i}" for i in range(100) if partition_for(f"NEW-{i}", 4) in owned)
    feed(restarted, Incident(newcomer).reported(0).events)
    feed(restarted, Incident(newcomer).reported(0).events)  # the same again: no new case
    assert sample(restarted, "cdi_cases_held") == len(mine) + 1
    assert sample(restarted, "cdi_open_flags", finding="deadline_warning", priority="P3") == 0


def test_decision_for_an_unknown_flag_is_a_dead_letter(book: RuleBook) -> None:
    shell, out = make_shell(book, {})
    body = decision_on_unknown_flag("upheld")
    p = partition_for("INC-1", 4)
    asyncio.run(shell.on_decision(b"INC-1", json.dumps(body).encode(), "dec", p, 3))
    assert [d.error.kind for d in out.dlq] == ["unknown_flag"]


@pytest.mark.parametrize("key", ["INC-1", "INC-20260105-000010", "x"])
def test_partition_for_matches_kafka_python(key: str) -> None:
    from aiokafka.partitioner import DefaultPartitioner

    # faust produces the changelog with aiokafka's partitioner; the input topic's
    # producers use the same murmur2 scheme.
    every = list(range(8))
    assert partition_for(key, 8) == DefaultPartitioner()(key.encode(), every, every)


def decision_on_unknown_flag(decision: str) -> dict[str, str]:
    return {
        "decision_id": "D1",
        "flag_id": "flag-000000000000000000000000",
        "incident_id": "INC-1",
        "decision": decision,
        "reason": "r",
        "decided_at": "2026-01-05T10:00:00Z",
        "ddm_ref": "DDM-1",
    }


def neighbour(incident_id: str, nth: int = 1) -> str:
    """Another incident on the same partition (of 4), so one event clock serves both."""
    p = partition_for(incident_id, 4)
    found = [f"NB-{i}" for i in range(200) if partition_for(f"NB-{i}", 4) == p]
    return found[nth - 1]


def sample(shell: Shell, name: str, **labels: str) -> float:
    value = shell.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def total(shell: Shell, family: str) -> float:
    return sum(
        s.value for m in shell.metrics.registry.collect() for s in m.samples if s.name == family
    )


def test_each_partition_keeps_its_own_event_clock(book: RuleBook) -> None:
    """Event time far ahead on one partition must not fire deadlines on another that is
    still catching up: a backlog or a restart would otherwise flag incidents whose
    crime records simply have not been read yet."""
    shell, out = make_shell(book, {}, clock="event")
    slow, fast = (
        "INC-1",
        next(
            f"INC-{i}"
            for i in range(2, 100)
            if partition_for(f"INC-{i}", 4) != partition_for("INC-1", 4)
        ),
    )
    feed(shell, Incident(slow).reported(0).events)
    feed(shell, Incident(fast).reported(48).events)  # its partition is two days ahead
    asyncio.run(shell.tick())
    assert {c.incident_id for c in out.review} == {fast} or not out.review
    assert not [c for c in out.review if c.incident_id == slow]
    feed(shell, Incident(slow).reported(0).crime(20).events[1:])  # the record arrives
    feed(shell, Incident(slow, tag="later").reported(30).events)
    asyncio.run(shell.tick())
    findings = {c.finding for c in out.review if c.incident_id == slow}
    assert findings == {"deadline_warning"}, findings  # warned at 12 h, never breached


def test_an_event_dated_far_ahead_of_the_wall_clock_is_a_dead_letter(book: RuleBook) -> None:
    shell, out = make_shell(book, {}, clock="hybrid", max_event_ahead_seconds=3600)
    future = Incident(start=T0.replace(year=2099)).reported(0).events
    feed(shell, future)
    assert [(d.error.kind, d.error.field) for d in out.dlq] == [("future_event", "occurred_at")]
    assert shell.now() is None or shell.now() < time.time() + 3600
    assert sample(shell, "cdi_dead_letters_total", kind="future_event") == 1


def test_metrics_follow_the_flags_published(book: RuleBook) -> None:
    shell, out = make_shell(book, {}, clock="event")
    feed(shell, Incident().reported(0).crime(2).events)
    feed(shell, Incident(neighbour("INC-1")).reported(0).events)
    feed(shell, Incident(neighbour("INC-1", 2)).reported(30).events)
    asyncio.run(shell.tick())
    assert sample(shell, "cdi_crimes_recorded_in_time_total") == 1
    opened = [c for c in out.review if c.status == "open"]
    assert total(shell, "cdi_flag_changes_total") == len(out.review) > 0
    assert sample(shell, "cdi_deadline_warnings_total") == sum(
        1 for c in opened if c.finding == "deadline_warning"
    )
    latest = {c.flag_id: c for c in out.review}
    still_open = sum(1 for c in latest.values() if c.status == "open")
    assert total(shell, "cdi_open_flags") == still_open


def test_an_event_on_another_partition_than_its_incident_is_a_dead_letter(
    book: RuleBook,
) -> None:
    """Processed where it arrived, a mis-keyed event would raise flags that the worker
    owning its incident never sees or revises (its crime record goes elsewhere)."""
    shell, out = make_shell(book, {})
    events = Incident().reported(0).closed(1, "non_crime", "x").events
    right = partition_for("INC-1", 4)
    wrong = (right + 1) % 4

    async def go() -> None:
        for i, e in enumerate(events):
            await shell.on_incident(b"INC-1", json.dumps(e).encode(), "in", wrong, i)

    asyncio.run(go())
    assert out.review == []
    assert [(d.error.kind, d.error.field, d.partition) for d in out.dlq] == [
        ("wrong_partition", "incident_id", wrong)
    ] * 2
    assert f"partition {right} of 4, not {wrong}" in out.dlq[0].error.message
    assert shell.store.get("INC-1") is None
    assert sample(shell, "cdi_dead_letters_total", kind="wrong_partition") == 2
    feed(shell, events)  # the same events, keyed right, are processed
    assert [c.finding for c in out.review] == ["crime_not_recorded"]


def test_a_decision_on_another_partition_than_its_incident_is_a_dead_letter(
    book: RuleBook,
) -> None:
    shell, out = make_shell(book, {})
    body = decision_on_unknown_flag("rejected")
    wrong = (partition_for("INC-1", 4) + 1) % 4
    asyncio.run(shell.on_decision(b"INC-1", json.dumps(body).encode(), "dec", wrong, 3))
    assert [d.error.kind for d in out.dlq] == ["wrong_partition"]


@pytest.mark.parametrize("key", [None, b"INC-2", b"\xff\xfe", b"INC-1 "])
def test_a_message_not_keyed_by_its_incident_is_a_dead_letter_even_on_the_right_partition(
    book: RuleBook, key: bytes | None
) -> None:
    """Regression: only the partition was checked, so a mis-keyed producer had about one
    in four of an incident's events applied and the rest dead-lettered."""
    shell, out = make_shell(book, {})
    events = Incident().reported(0).closed(1, "non_crime", "x").events
    right = partition_for("INC-1", 4)

    async def go() -> None:
        for i, e in enumerate(events):
            await shell.on_incident(key, json.dumps(e).encode(), "in", right, i)
        body = decision_on_unknown_flag("rejected")
        await shell.on_decision(key, json.dumps(body).encode(), "dec", right, 9)

    asyncio.run(go())
    assert out.review == [] and shell.store.get("INC-1") is None
    assert [(d.error.kind, d.error.field) for d in out.dlq] == [("wrong_key", "incident_id")] * 3
    assert "not its incident_id 'INC-1'" in out.dlq[0].error.message
    assert sample(shell, "cdi_dead_letters_total", kind="wrong_key") == 3


def test_a_tombstone_is_a_dead_letter_that_says_so(book: RuleBook) -> None:
    shell, out = make_shell(book, {})

    async def go() -> None:
        await shell.on_incident(b"INC-1", None, "in", 0, 1)
        await shell.on_incident(b"INC-1", b"", "in", 0, 2)
        await shell.on_decision(b"INC-1", None, "dec", 0, 3)

    asyncio.run(go())
    assert [(d.error.kind, "tombstone" in d.error.message) for d in out.dlq] == [
        ("not_json", True),
        ("not_json", False),
        ("not_json", True),
    ]


def test_a_message_too_large_to_carry_whole_is_dead_lettered_cut_short(book: RuleBook) -> None:
    """Base64 makes a dead letter a third larger than its message: one near the input
    limit must still reach the dead-letter topic, with enough to find the original."""
    shell, out = make_shell(book, {}, max_message_bytes=2 * 1024 * 1024)
    raw = bytes(range(256)) * 4000  # about 1 MB, not UTF-8
    asyncio.run(shell.on_incident(b"k", raw, "in", 2, 11))
    (letter,) = out.dlq
    assert len(letter.to_json_bytes()) <= DEAD_LETTER_MAX_BYTES
    assert letter.truncated and letter.encoding == "base64"
    assert letter.value_bytes == len(raw)
    assert letter.value_sha256 == hashlib.sha256(raw).hexdigest()
    kept = letter.raw_value()
    assert 0 < len(kept) < len(raw) and raw.startswith(kept)
    assert (letter.topic, letter.partition, letter.offset) == ("in", 2, 11)


def test_a_dead_letter_that_cannot_be_sent_is_counted_as_lost_not_sent(
    book: RuleBook, caplog: pytest.LogCaptureFixture
) -> None:
    shell, out = make_shell(book, {})

    async def refuse(letter: DeadLetter) -> None:
        raise RuntimeError("broker says no")

    shell.send_dlq = refuse
    asyncio.run(shell.on_incident(b"k", b"{nope", "in", 3, 42))
    assert sample(shell, "cdi_dead_letters_total", kind="not_json") == 0
    assert sample(shell, "cdi_dead_letters_lost_total", kind="not_json") == 1
    assert "in/3@42" in caplog.text
    feed(shell, Incident().reported(0).closed(1, "non_crime", "x").events)  # goes on
    assert [c.finding for c in out.review] == ["crime_not_recorded"]


def test_an_upheld_decision_is_published_but_is_no_new_warning(book: RuleBook) -> None:
    shell, out = make_shell(book, {})
    feed(shell, Incident().reported(0).events)
    feed(shell, Incident(neighbour("INC-1")).reported(13).events)  # moves the clock past 12 h
    (warning,) = [c for c in out.review if c.incident_id == "INC-1"]
    assert warning.finding == "deadline_warning"
    warned = sample(shell, "cdi_deadline_warnings_total")
    assert warned == 1
    body = {
        **decision_on_unknown_flag("upheld"),
        "flag_id": warning.flag_id,
        "decided_at": "2026-01-05T21:00:00Z",
    }
    p = partition_for("INC-1", 4)
    asyncio.run(shell.on_decision(b"INC-1", json.dumps(body).encode(), "dec", p, 4))
    decided = out.review[-1]
    assert (decided.flag_id, decided.revision, decided.ddm_decision) == (
        warning.flag_id,
        2,
        "upheld",
    )
    assert sample(shell, "cdi_deadline_warnings_total") == warned
    assert out.dlq == []
