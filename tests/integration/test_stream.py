"""The streaming service end to end: real workers, a real broker, real topics."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdi_stream.broker import committed_offsets
from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import SimConfig, write_jsonl
from tests.integration.workers import (
    PARTITIONS,
    Topics,
    Worker,
    events_as_messages,
    late_view,
    latest,
    open_view,
    prepare,
    publish,
    read_all,
    running,
    wait_for,
)

FAR_FUTURE = "2030-01-01T00:00:00Z"


def simulated(tmp_path: Path, incidents: int, seed: int) -> list[bytes]:
    path = tmp_path / f"events-{seed}.jsonl"
    write_jsonl(SimConfig(seed=seed, incidents=incidents), path)
    return path.read_bytes().splitlines(keepends=True)


def replayed(book: RuleBook, lines: list[bytes]) -> list[dict[str, Any]]:
    """What the offline driver says, with time run past every deadline (the workers'
    wall clock is long past the simulated dates)."""
    import datetime as dt

    out = io.BytesIO()
    until = dt.datetime.fromisoformat(FAR_FUTURE.replace("Z", "+00:00"))
    replay(lines, book, out=out, until=until)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def converged(expected: list[dict[str, Any]]) -> Any:
    want = open_view(expected)

    def check(messages: list[dict[str, Any]]) -> bool:
        return open_view(messages) == want

    return check


def test_flags_on_the_review_topic_equal_the_replay(
    broker: str, book: RuleBook, tmp_path: Path
) -> None:
    lines = simulated(tmp_path, 150, seed=21)
    expected = replayed(book, lines)
    topics = Topics()
    prepare(broker, topics)
    with running(topics.env(broker), tmp_path / "worker.log"):
        publish(broker, topics.incidents, events_as_messages(lines))
        got = wait_for(lambda: read_all(broker, topics.review), converged(expected))
    assert open_view(got) == open_view(expected)
    assert late_view(got) == late_view(expected)
    assert len(open_view(got)) > 10


def test_bad_input_goes_to_the_dead_letter_topic_and_loses_nothing(
    broker: str, book: RuleBook, tmp_path: Path
) -> None:
    lines = simulated(tmp_path, 60, seed=22)
    expected = replayed(book, lines)
    valid = list(events_as_messages(lines))
    first = json.loads(lines[0])
    bad: list[tuple[bytes | None, bytes]] = [
        (b"k1", b"this is not json"),
        (b"k2", b"\xff\xfe\x00binary"),
        (b"k3", b"[1, 2, 3]"),
        (
            b"k4",
            json.dumps({**first, "event_id": "x1", "event_type": "incident.exploded"}).encode(),
        ),
        (
            b"k5",
            json.dumps({**first, "event_id": "x2", "occurred_at": "2026-01-05T08:00:00"}).encode(),
        ),
        (b"k6", json.dumps({**first, "event_id": "x3", "schema_version": 2}).encode()),
        (b"k7", json.dumps({**first, "event_id": "x4", "padding": "x" * 5000}).encode()),
        (None, b""),
    ]
    mixed: list[tuple[bytes | None, bytes]] = []
    for i, message in enumerate(valid):
        mixed.append(message)
        if i % 20 == 5 and bad:
            mixed.append(bad.pop())
    mixed.extend(bad)
    topics = Topics()
    prepare(broker, topics)
    env = topics.env(broker, CDI_MAX_MESSAGE_BYTES="4096")
    with running(env, tmp_path / "worker.log"):
        publish(broker, topics.incidents, mixed)
        got = wait_for(lambda: read_all(broker, topics.review), converged(expected))
        letters = wait_for(lambda: read_all(broker, topics.dlq), lambda m: len(m) >= 8)
    assert open_view(got) == open_view(expected)
    kinds = sorted(letter["error"]["kind"] for letter in letters)
    assert kinds == sorted(
        [
            "not_json",
            "not_json",
            "not_object",
            "unknown_event_type",
            "schema",
            "unsupported_schema_version",
            "too_large",
            "not_json",
        ]
    )
    binary = next(x for x in letters if x["key"] is not None and x["encoding"] == "base64")
    assert binary["topic"] == topics.incidents
    assert isinstance(binary["offset"], int)
    schema = next(x for x in letters if x["error"]["kind"] == "schema")
    assert schema["error"]["field"] == "occurred_at"


def test_kill_minus_nine_mid_stream_loses_nothing(
    broker: str, book: RuleBook, tmp_path: Path
) -> None:
    lines = simulated(tmp_path, 200, seed=23)
    messages = list(events_as_messages(lines))
    expected = replayed(book, lines)

    clean = Topics()
    prepare(broker, clean)
    with running(clean.env(broker), tmp_path / "clean.log"):
        publish(broker, clean.incidents, messages)
        no_fault = wait_for(lambda: read_all(broker, clean.review), converged(expected))

    faulty = Topics()
    prepare(broker, faulty)
    env = faulty.env(broker)
    first = Worker(env, tmp_path / "first.log")
    first.wait_ready()
    half = len(messages) // 2
    publish(broker, faulty.incidents, messages[:half])
    wait_for(lambda: read_all(broker, faulty.review), lambda m: len(m) > 20)
    first.kill()
    publish(broker, faulty.incidents, messages[half:])
    with running(env, tmp_path / "second.log"):
        got = wait_for(lambda: read_all(broker, faulty.review), converged(expected))
    assert open_view(got) == open_view(no_fault)
    assert late_view(got) == late_view(no_fault) == late_view(expected)
    invented = {k: v for k, v in latest(got).items() if k not in latest(no_fault)}
    assert not invented, sorted(
        (v["finding"], v["status"], v["revision"], v["incident_id"]) for v in invented.values()
    )


@dataclass
class Takeover:
    expected: list[dict[str, Any]]
    got: list[dict[str, Any]]
    logs: str
    uncommitted_at_kill: int


def one_of_two_workers_killed(
    broker: str, book: RuleBook, tmp_path: Path, **killed_env: str
) -> Takeover:
    """Workers a and b share the partitions; b is killed half-way through the stream and
    a must take over b's share and converge on the replay."""
    lines = simulated(tmp_path, 160, seed=24)
    messages = list(events_as_messages(lines))
    expected = replayed(book, lines)
    topics = Topics()
    prepare(broker, topics)
    a = Worker(topics.env(broker), tmp_path / "a.log")
    b = Worker(topics.env(broker, **killed_env), tmp_path / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        publish(broker, topics.incidents, messages[: len(messages) // 2])
        wait_for(lambda: read_all(broker, topics.review), lambda m: len(m) > 20)
        b.kill()
        # Read before a can take over (a session timeout, 3 s, at least).
        group = topics.env(broker)["CDI_CONSUMER_GROUP"]
        uncommitted = uncommitted_partitions(broker, group, topics.incidents)
        publish(broker, topics.incidents, messages[len(messages) // 2 :])
        got = wait_for(lambda: read_all(broker, topics.review), converged(expected))
    finally:
        a.stop()
        b.stop()
    logs = a.log.read_text() + b.log.read_text()
    return Takeover(expected, got, logs, uncommitted)


def uncommitted_partitions(broker: str, group: str, topic: str) -> int:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        offsets = committed_offsets(admin, group, topic, range(PARTITIONS))
    finally:
        admin.close()
    return sum(1 for offset in offsets.values() if offset < 0)


def test_two_workers_share_the_partitions_and_either_can_die(
    broker: str, book: RuleBook, tmp_path: Path
) -> None:
    run = one_of_two_workers_killed(broker, book, tmp_path)
    assert open_view(run.got) == open_view(run.expected)
    assert run.logs.count("cases recovered") >= 3  # both started, then a took over b's share


def test_a_partition_taken_over_before_its_first_commit_is_processed_in_full(
    broker: str, book: RuleBook, tmp_path: Path
) -> None:
    """Regression: faust seeks a taken-over partition back to its committed offset after
    recovering the tables, and skipped the records it had fetched meanwhile when there
    was no committed offset. Worker b here never commits; once it dies, worker a must
    process b's partitions from the start."""
    run = one_of_two_workers_killed(broker, book, tmp_path, CDI_COMMIT_INTERVAL_SECONDS="3600")
    assert run.uncommitted_at_kill >= 1  # b's share: what a has to read from the start
    assert open_view(run.got) == open_view(run.expected)
    assert late_view(run.got) == late_view(run.expected)


@pytest.mark.parametrize("decision", ["rejected", "unknown"])
def test_ddm_decisions(broker: str, book: RuleBook, tmp_path: Path, decision: str) -> None:
    lines = simulated(tmp_path, 30, seed=25)
    expected = replayed(book, lines)
    topics = Topics()
    prepare(broker, topics)
    with running(topics.env(broker), tmp_path / "worker.log"):
        publish(broker, topics.incidents, events_as_messages(lines))
        got = wait_for(lambda: read_all(broker, topics.review), converged(expected))
        target = next(m for m in latest(got).values() if m["status"] == "open")
        flag_id = target["flag_id"] if decision == "rejected" else "flag-000000000000000000000000"
        body = {
            "decision_id": f"D-{decision}",
            "flag_id": flag_id,
            "incident_id": target["incident_id"],
            "decision": "rejected",
            "reason": "not a crime on review",
            "decided_at": "2026-11-25T10:00:00Z",
            "ddm_ref": "DDM-1",
        }
        publish(
            broker, topics.decisions, [(target["incident_id"].encode(), json.dumps(body).encode())]
        )
        if decision == "rejected":
            after = wait_for(
                lambda: read_all(broker, topics.review),
                lambda m: latest(m)[flag_id]["status"] == "withdrawn",
            )
            assert latest(after)[flag_id]["revision"] == target["revision"] + 1
        else:
            letters = wait_for(lambda: read_all(broker, topics.dlq), lambda m: len(m) >= 1)
            assert letters[0]["error"]["kind"] == "unknown_flag"


def test_deadline_fires_within_a_second_of_its_due_time(broker: str, tmp_path: Path) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # Due 20 s from now: time enough for the worker to take the report before it is due.
    reported = now - dt.timedelta(hours=24) + dt.timedelta(seconds=20)
    event = {
        "schema_version": 1,
        "event_id": "E-live-1",
        "event_type": "incident.reported",
        "incident_id": "INC-LIVE-1",
        "occurred_at": reported.isoformat().replace("+00:00", "Z"),
        "channel": "999",
        "opening_code": "ASSAULT",
        "victims": [{"victim_ref": "V-1", "kind": "person"}],
        "disclosures": [{"disclosure_id": "D1", "offence_code": "8N", "victim_ref": "V-1"}],
    }
    topics = Topics()
    prepare(broker, topics)
    with running(topics.env(broker), tmp_path / "worker.log"):
        publish(broker, topics.incidents, [(b"INC-LIVE-1", json.dumps(event).encode())])
        wait_for(
            lambda: read_all(broker, topics.review),
            lambda m: any(x["finding"] == "deadline_warning" for x in m),
            timeout=15,
        )
        got = wait_for(
            lambda: read_all(broker, topics.review),
            lambda m: any(x["finding"] == "crime_not_recorded" for x in m),
            timeout=60,
        )
    breach = next(x for x in got if x["finding"] == "crime_not_recorded")
    due = dt.datetime.fromisoformat(breach["due_at"].replace("Z", "+00:00"))
    emitted = dt.datetime.fromisoformat(breach["emitted_at"].replace("Z", "+00:00"))
    assert due == reported + dt.timedelta(hours=24)
    assert dt.timedelta(0) <= emitted - due < dt.timedelta(seconds=1)
    warning = latest(got)[next(x["flag_id"] for x in got if x["finding"] == "deadline_warning")]
    assert warning["status"] == "withdrawn"


def start_worker_and_wait(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A worker expected to stop by itself at start-up."""
    return subprocess.run(
        [sys.executable, "-m", "cdi_stream.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_partition_count_mismatch_is_a_clear_start_up_error(broker: str, tmp_path: Path) -> None:
    from cdi_stream.broker import create_topics

    topics = Topics()
    create_topics(broker, {topics.incidents: 2})
    done = start_worker_and_wait(topics.env(broker))
    assert done.returncode == 2, done.stderr
    assert f"topic '{topics.incidents}' has 2 partitions, expected 4" in done.stderr
    assert "deleting the topic would lose its history" in done.stderr


def test_rocksdb_store_recovers_after_a_restart(
    broker: str, book: RuleBook, tmp_path: Path
) -> None:
    pytest.importorskip("rocksdb", reason="needs the rocksdb extra")
    lines = simulated(tmp_path, 80, seed=26)
    messages = list(events_as_messages(lines))
    expected = replayed(book, lines)
    topics = Topics()
    prepare(broker, topics)
    env = topics.env(broker, CDI_STORE="rocksdb://", CDI_DATA_DIR=str(tmp_path / "data"))
    with running(env, tmp_path / "first.log"):
        publish(broker, topics.incidents, messages[: len(messages) // 2])
        wait_for(lambda: read_all(broker, topics.review), lambda m: len(m) > 10)
    assert any((tmp_path / "data").rglob("*.db"))
    with running(env, tmp_path / "second.log"):
        publish(broker, topics.incidents, messages[len(messages) // 2 :])
        got = wait_for(lambda: read_all(broker, topics.review), converged(expected))
        # A second worker on the same directory is refused at once: RocksDB opens a
        # database in one process only.
        second = start_worker_and_wait(env)
        assert second.returncode == 2, second.stderr
        assert "in use by another worker" in second.stderr
    assert open_view(got) == open_view(expected)
