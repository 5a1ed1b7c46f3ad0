"""The DDM queue view and decisions against a real broker."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from rich.console import Console

from cdi_stream.broker import create_topics
from cdi_stream.contract import FlagChange, parse_decision
from cdi_stream.ddm import DecisionError, ReviewQueue, publish_decision, queue_json, watch_queue
from cdi_stream.settings import Settings, load_settings
from tests.integration.workers import interruptible

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PARTITIONS = 3


def flag(flag_id: str, revision: int, incident_id: str, **fields: Any) -> FlagChange:
    values: dict[str, Any] = {
        "flag_id": flag_id,
        "revision": revision,
        "status": "open",
        "finding": "crime_not_recorded",
        "rule_id": "RECORD-24H",
        "rule_title": "Crime not recorded within 24 hours",
        "reference": "HOCR Section A",
        "edition": "2023-05",
        "priority": "P2",
        "incident_id": incident_id,
        "victim_ref": "V-1",
        "expected": {"record_by": "2026-11-24 12:00 UTC"},
        "observed": {"recorded_codes": "none"},
        "due_at": NOW + timedelta(hours=3),
        "event_time": NOW - timedelta(hours=1),
        "emitted_at": NOW - timedelta(hours=1),
        "explanation": f"Explanation of {flag_id} revision {revision}.",
    }
    values.update(fields)
    return FlagChange.model_validate(values)


# Keyed by incident, in the order sent. Per key, order is kept by the partition.
A1 = flag("flag-a", 1, "INC-A")
A2 = flag("flag-a", 2, "INC-A", priority="P1")
B1 = flag("flag-b", 1, "INC-B")
B2 = flag("flag-b", 2, "INC-B", status="withdrawn")
C2 = flag("flag-c", 2, "INC-C", due_at=None, finding="wrong_classification")
C1 = flag("flag-c", 1, "INC-C", due_at=None)  # a stale revision republished late
D1 = flag("flag-d", 1, "INC-D", priority="P3", due_at=NOW - timedelta(hours=2))
E1 = flag("flag-e", 1, "INC-E")
E2 = flag("flag-e", 2, "INC-E", status="resolved")
SENT: list[tuple[bytes, bytes | None]] = [
    *((f.incident_id.encode(), f.to_json_bytes()) for f in (A1, B1, C2, D1, E1)),
    (b"INC-X", b"this is not json"),
    (b"INC-A", A2.to_json_bytes()),
    (b"INC-Y", json.dumps({"flag_id": "flag-y", "revision": 1}).encode()),
    (b"INC-Z", None),
    *((f.incident_id.encode(), f.to_json_bytes()) for f in (B2, C1, E2)),
]
OPEN = [A2, C2, D1]  # A2 is P1; C2 and D1 are P2 and P3
MALFORMED = 3


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def settings_for(broker: str, review: str, decisions: str) -> Settings:
    # Topics of their own, so other tests on the same session broker cannot interfere.
    return load_settings(
        kafka_bootstrap_servers=broker,
        profile="local",
        topic_review=review,
        topic_decisions=decisions,
    )


@pytest.fixture(scope="module")
def settings(broker: str) -> Settings:
    review, decisions = unique("ddm-review"), unique("ddm-decisions")
    create_topics(broker, {review: PARTITIONS, decisions: PARTITIONS})
    producer = KafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)
    try:
        for key, value in SENT:
            producer.send(review, key=key, value=value)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)
    return settings_for(broker, review, decisions)


def consoles(width: int = 200) -> tuple[Console, io.StringIO, Console, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Console(file=out, width=width), out, Console(file=err, width=width), err


def read_back(settings: Settings, decision_id: str, timeout: float = 10.0) -> Any:
    """The record on the decisions topic that carries ``decision_id``."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(settings.topic_decisions, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    if parse_decision(record.value).decision_id == decision_id:
                        return record
    finally:
        consumer.close()
    raise AssertionError(f"decision {decision_id} not on {settings.topic_decisions}")


# --------------------------------------------------------------------------- the queue


def test_no_follow_json_prints_exactly_the_open_flags(settings: Settings) -> None:
    console, out, err_console, err = consoles()
    code = watch_queue(
        settings,
        follow=False,
        as_json=True,
        group=None,
        console=console,
        err_console=err_console,
    )
    assert code == 0, err.getvalue()
    expected = ReviewQueue()
    for change in OPEN:
        expected.apply(change)
    assert out.getvalue() == queue_json(expected) + "\n"
    assert [d["flag_id"] for d in json.loads(out.getvalue())] == ["flag-a", "flag-c", "flag-d"]

    problems = err.getvalue()
    assert problems.count("skipped") == MALFORMED, problems
    assert "json_invalid" in problems or "Invalid JSON" in problems
    assert "no value" in problems
    assert "this is not json" not in problems  # reported by position, not by content


def test_no_follow_table_and_a_consumer_group_id(settings: Settings) -> None:
    console, out, err_console, err = consoles()
    code = watch_queue(
        settings,
        follow=False,
        as_json=False,
        group=unique("ddm-view"),
        console=console,
        err_console=err_console,
        idle=0.5,
    )
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "DDM review queue: 3 open (P1 1, P2 1, P3 1)" in text
    assert "3 unreadable messages skipped" in text
    rows = [line for line in text.splitlines() if "flag-" in line]
    assert [r.split("flag-")[1][0] for r in rows] == ["a", "c", "d"]
    assert "overdue" in rows[2]
    assert "flag-b" not in text
    assert "flag-e" not in text


def test_a_missing_topic_is_an_error_not_an_empty_queue(broker: str) -> None:
    missing = settings_for(broker, unique("no-such-review"), unique("no-such-decisions"))
    console, out, err_console, err = consoles()
    code = watch_queue(
        missing, follow=False, as_json=True, group=None, console=console, err_console=err_console
    )
    assert code == 3
    assert out.getvalue() == ""
    assert "does not exist" in err.getvalue()


# Runs `watch_queue(follow=True)` as the CLI would, on a terminal-sized console.
FOLLOW_SCRIPT = """
import sys
from rich.console import Console
from cdi_stream.ddm import watch_queue
from cdi_stream.settings import load_settings

bootstrap, review = sys.argv[1:]
settings = load_settings(kafka_bootstrap_servers=bootstrap, profile="local", topic_review=review)
console = Console(force_terminal=True, width=200, height=40)
sys.exit(watch_queue(settings, follow=True, as_json=False, console=console, idle=0.3))
"""


def test_follow_shows_a_live_table_until_interrupted(settings: Settings) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            FOLLOW_SCRIPT,
            settings.kafka_bootstrap_servers,
            settings.topic_review,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=interruptible,
    )
    seen = b""
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        deadline = time.monotonic() + 10.0
        # Caught up: the caption no longer says it is reading, and every flag is shown.
        while time.monotonic() < deadline and not (
            b"flag-d" in seen
            and b"messages read" in seen.rsplit(b"DDM review queue", 1)[-1]
            and b"reading" not in seen.rsplit(b"DDM review queue", 1)[-1]
        ):
            time.sleep(0.1)
            seen += proc.stdout.read() or b""
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    last_frame = (seen + rest).rsplit(b"DDM review queue", 1)[-1].decode()
    assert proc.returncode == 0, err.decode()
    assert ": 3 open (P1 1, P2 1, P3 1)" in last_frame
    assert "reading" not in last_frame
    assert "3 unreadable messages skipped" in last_frame
    positions = [last_frame.index(f"flag-{name}") for name in "acd"]
    assert positions == sorted(positions)
    assert "flag-b" not in last_frame
    assert err.decode().count("skipped") == MALFORMED


# --------------------------------------------------------------------------- decisions


def test_decision_with_the_incident_given(settings: Settings) -> None:
    decided_at = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    decision_id = unique("decision")
    decision = publish_decision(
        settings,
        flag_id="flag-d",
        incident_id="INC-D",
        decision="rejected",
        reason="Contrary evidence on the log.",
        ddm_ref="DDM-7",
        decided_at=decided_at,
        decision_id=decision_id,
    )
    assert (decision.decision_id, decision.flag_id, decision.incident_id) == (
        decision_id,
        "flag-d",
        "INC-D",
    )
    assert (decision.decision, decision.decided_at, decision.ddm_ref) == (
        "rejected",
        decided_at,
        "DDM-7",
    )
    record = read_back(settings, decision_id)
    assert record.key == b"INC-D"
    assert parse_decision(record.value) == decision


def test_decision_looks_up_the_incident(settings: Settings) -> None:
    before = datetime.now(UTC)
    decision = publish_decision(
        settings,
        flag_id="flag-a",
        decision="upheld",
        reason="Recorded as 8N.",
        ddm_ref="DDM-7",
        on_skip=lambda message: None,
    )
    assert decision.incident_id == "INC-A"
    assert before <= decision.decided_at <= datetime.now(UTC)
    assert str(uuid.UUID(decision.decision_id, version=4)) == decision.decision_id
    record = read_back(settings, decision.decision_id)
    assert record.key == b"INC-A"
    assert parse_decision(record.value) == decision


def test_an_unknown_flag_is_refused(settings: Settings) -> None:
    with pytest.raises(DecisionError, match="flag-nope"):
        publish_decision(
            settings,
            flag_id="flag-nope",
            decision="upheld",
            reason="Recorded.",
            ddm_ref="DDM-7",
            idle=0.5,
            on_skip=lambda message: None,
        )
