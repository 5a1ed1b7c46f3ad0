"""The local broker and topic set-up, against a real broker."""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata, TopicPartition

from cdi_stream.broker import (
    BrokerError,
    LocalBroker,
    TopicMismatch,
    create_topics,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[2]

# Group joins on the local broker wait for half the session timeout; keep it short.
GROUP_TIMEOUTS: dict[str, Any] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}


def unique(prefix: str) -> str:
    """A fresh topic or group name, so reruns against a long-lived broker never clash."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def partition_count(bootstrap: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (info,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert info["error_code"] == 0, info
    return len(info["partitions"])


def consume(consumer: KafkaConsumer, count: int, timeout: float = 10.0) -> list[Any]:
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    assert len(records) >= count, f"got {len(records)} of {count} records"
    return records


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def refuses_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


# ------------------------------------------------------------------ produce / consume


def test_keyed_messages_come_back_in_order_per_partition(broker: str) -> None:
    topic = unique("keyed")
    create_topics(broker, {topic: 3})
    keys = [f"incident-{n}".encode() for n in range(6)]
    sent = [(keys[i % len(keys)], f"{i}".encode()) for i in range(60)]
    produce(broker, topic, sent)

    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        consumer.seek_to_beginning()
        records = consume(consumer, len(sent))
    finally:
        consumer.close()

    assert len(records) == len(sent)
    by_partition: dict[int, list[Any]] = defaultdict(list)
    partition_of_key: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        by_partition[record.partition].append(record)
        partition_of_key[record.key].add(record.partition)
    assert all(len(partitions) == 1 for partitions in partition_of_key.values())
    for partition_records in by_partition.values():
        offsets = [r.offset for r in partition_records]
        assert offsets == sorted(offsets)
        assert len(set(offsets)) == len(offsets)
    for key in keys:
        got = [int(r.value) for r in records if r.key == key]
        want = [int(v) for k, v in sent if k == key]
        assert got == want


# --------------------------------------------------------------------- create_topics


def test_create_topics_uses_the_requested_partition_count(broker: str) -> None:
    five, one = unique("five"), unique("one")
    create_topics(broker, {five: 5, one: 1}, config={one: {"cleanup.policy": "compact"}})
    assert partition_count(broker, five) == 5
    assert partition_count(broker, one) == 1

    consumer = KafkaConsumer(bootstrap_servers=broker)
    try:
        assert consumer.partitions_for_topic(five) == {0, 1, 2, 3, 4}
    finally:
        consumer.close()


def test_create_topics_is_idempotent(broker: str) -> None:
    existing, new = unique("again"), unique("new")
    create_topics(broker, {existing: 2})
    create_topics(broker, {existing: 2})
    create_topics(broker, {existing: 2, new: 3})
    assert partition_count(broker, existing) == 2
    assert partition_count(broker, new) == 3


def test_create_topics_refuses_a_different_partition_count(broker: str) -> None:
    topic = unique("mismatch")
    create_topics(broker, {topic: 4})
    with pytest.raises(TopicMismatch) as caught:
        create_topics(broker, {topic: 2})
    error = caught.value
    assert isinstance(error, BrokerError)
    assert (error.topic, error.expected, error.actual) == (topic, 2, 4)
    assert f"topic {topic!r} has 4 partitions, expected 2" in str(error)
    assert partition_count(broker, topic) == 4


def test_create_topics_rejects_bad_arguments(broker: str) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        create_topics(broker, {unique("zero"): 0})
    with pytest.raises(ValueError, match="not being created"):
        create_topics(broker, {unique("a"): 1}, config={"other": {"cleanup.policy": "compact"}})


def test_create_topics_on_a_dead_address_raises_broker_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BrokerError):
        create_topics(f"127.0.0.1:{port}", {"t": 1}, timeout=1.0)


# ------------------------------------------------------------------- consumer groups


def test_consumer_group_resumes_from_its_committed_offset(broker: str) -> None:
    topic, group = unique("resume"), unique("group")
    create_topics(broker, {topic: 1})
    produce(broker, topic, [(b"k", f"{i}".encode()) for i in range(10)])
    tp = TopicPartition(topic, 0)

    def group_consumer() -> KafkaConsumer:
        return KafkaConsumer(
            topic,
            bootstrap_servers=broker,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **GROUP_TIMEOUTS,
        )

    first = group_consumer()
    try:
        assert [r.offset for r in consume(first, 10)][:10] == list(range(10))
        first.commit({tp: OffsetAndMetadata(6, "", -1)})
        assert first.committed(tp) == 6
    finally:
        first.close()

    second = group_consumer()
    try:
        resumed = consume(second, 4)
        assert second.committed(tp) == 6
    finally:
        second.close()
    assert [int(r.value) for r in resumed] == [6, 7, 8, 9]
    assert resumed[0].offset == 6


# ---------------------------------------------------------------------- LocalBroker


def test_wait_ready_times_out_quickly_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(BrokerError, match="no Kafka broker answered"):
        wait_ready("127.0.0.1", port, timeout=0.5)
    assert time.monotonic() - started < 2.0


@pytest.mark.usefixtures("local_broker_binary")
def test_stop_makes_the_port_refuse_connections() -> None:
    local = LocalBroker()
    try:
        with local:
            assert local.running
            wait_ready(local.host, local.port, timeout=2.0)
        assert not local.running
        assert refuses_connections(local.host, local.port)
        assert not local.log_path.parent.exists()  # a clean exit leaves no log behind
        local.stop()  # a second stop is harmless
    finally:
        local.cleanup()


@pytest.mark.usefixtures("local_broker_binary")
def test_stop_is_quick_with_a_client_connected_and_restart_keeps_the_port() -> None:
    local = LocalBroker()
    try:
        local.start()
        port = local.port
        with socket.create_connection((local.host, port)):
            started = time.monotonic()
            local.stop()
            assert time.monotonic() - started < 1.0
        assert refuses_connections(local.host, port)

        local.start()
        assert local.port == port
        wait_ready(local.host, port, timeout=2.0)
    finally:
        local.cleanup()
    assert refuses_connections(local.host, port)


def test_start_fails_with_the_log_tail_when_the_binary_exits(tmp_path: Path) -> None:
    fake = tmp_path / "fake-broker"
    fake.write_text("#!/bin/sh\necho 'cannot open storage' >&2\nexit 3\n")
    fake.chmod(0o755)
    local = LocalBroker(binary=fake)
    try:
        with pytest.raises(BrokerError, match="status 3") as caught:
            local.start(timeout=5.0)
        assert "cannot open storage" in str(caught.value)
        assert not local.running
    finally:
        local.cleanup()


@pytest.mark.usefixtures("local_broker_binary")
def test_start_refuses_a_port_in_use() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        local = LocalBroker(port=holder.getsockname()[1])
        try:
            with pytest.raises(BrokerError, match="already in use"):
                local.start(timeout=2.0)
        finally:
            local.cleanup()


def test_the_broker_command_exits_3_on_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    """As every broker error of the command line: 3, not 1."""
    from cdi_stream.broker import run_foreground

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        assert run_foreground(holder.getsockname()[1]) == 3
    assert "already in use" in capsys.readouterr().err


# -------------------------------------------------------------------- run_foreground


def read_line(stream: Any, timeout: float) -> str:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    finally:
        selector.close()
    return str(stream.readline())


@pytest.mark.usefixtures("local_broker_binary")
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_run_foreground_prints_bootstrap_and_stops_on_signal(
    stop_signal: signal.Signals,
) -> None:
    code = (
        "import sys; from cdi_stream.broker import run_foreground; sys.exit(run_foreground(None))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc.stdout, timeout=10.0)
        match = re.fullmatch(r"bootstrap: (127\.0\.0\.1):(\d+)\n", line)
        assert match, line
        host, port = match.group(1), int(match.group(2))
        wait_ready(host, port, timeout=2.0)

        # A connected client must not hold up the stop.
        with socket.create_connection((host, port)):
            started = time.monotonic()
            proc.send_signal(stop_signal)
            _, err = proc.communicate(timeout=5.0)
        assert proc.returncode == 0, err
        assert time.monotonic() - started < 3.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    details = re.search(r"broker pid (\d+), log (\S+);", err)
    assert details, err
    with pytest.raises(ProcessLookupError):
        os.kill(int(details.group(1)), 0)
    assert refuses_connections(host, port)
    shutil.rmtree(Path(details.group(2)).parent, ignore_errors=True)


def test_simulate_creates_its_topic_as_the_worker_would(
    broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published before any worker ran, the topic must not get the broker's default
    partition count: the worker would then refuse to start on it."""
    from typer.testing import CliRunner

    from cdi_stream.cli import app

    monkeypatch.setenv("CDI_PARTITIONS", "3")
    monkeypatch.setenv("CDI_MAX_EVENT_AHEAD_SECONDS", "0")
    topic = unique("simulated")
    args = ["simulate", "--incidents", "2", "--publish", "--bootstrap", broker, "--topic", topic]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr  # event time may run ahead: the worker allows it
    assert partition_count(broker, topic) == 3

    monkeypatch.setenv("CDI_PARTITIONS", "8")
    monkeypatch.delenv("CDI_MAX_EVENT_AHEAD_SECONDS")
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3
    assert "CDI_MAX_EVENT_AHEAD_SECONDS=0" in refused.stderr
    assert f"topic {topic!r} has 3 partitions, expected 8" in refused.stderr
