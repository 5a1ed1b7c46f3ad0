"""Kill, pause, rebalance and break the rules mid-stream: the final queue must not change.

The workers run the event clock. Under the wall clock the simulated dates lie months
in the past, so whether a deadline warning is raised before an incident's crime record
is read depends on timing, and two runs without any fault already raise different
transient flags. With event time, each partition's clock follows its own events in
offset order, so a fault-free run is reproducible and any difference is the fault's.

For each fault: the final open queue and the late recordings equal the no-fault run's,
every flag id seen also exists in the no-fault run (none invented), every valid event
was processed (each incident's case reflects all its events: the open queue and the
resolved and withdrawn flags agree), and nothing valid lands in the dead letter topic.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cdi_stream.broker import committed_offsets
from cdi_stream.simulate import SimConfig, write_jsonl
from tests.conftest import RULES_DIR
from tests.faults.conftest import COUNTS, Broker
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

Messages = list[tuple[bytes | None, bytes]]


def final_view(messages: list[dict[str, Any]]) -> dict[str, tuple[str, str, str]]:
    """Every flag's final status, finding and priority: resolved and withdrawn flags show
    that the events that closed them were processed."""
    return {k: (m["status"], m["finding"], m["priority"]) for k, m in latest(messages).items()}


def event_clock_deployment(bootstrap: str, **variables: str) -> tuple[Topics, dict[str, str]]:
    """Fresh topics and a worker environment on the event clock: under the wall clock
    whether a transient warning is raised depends on timing even without a fault."""
    topics = Topics()
    prepare(bootstrap, topics)
    return topics, topics.env(bootstrap, CDI_CLOCK="event", **variables)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Messages:
    path = tmp_path_factory.mktemp("faults") / "events.jsonl"
    write_jsonl(SimConfig(seed=41, incidents=160), path)
    return list(events_as_messages(path.read_bytes().splitlines()))


@pytest.fixture(scope="module")
def no_fault(
    fault_broker: Broker, stream: Messages, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    topics, env = event_clock_deployment(fault_broker.bootstrap)
    log = tmp_path_factory.mktemp("no-fault") / "worker.log"
    with running(env, log):
        publish(fault_broker.bootstrap, topics.incidents, stream)
        got = settle(fault_broker.bootstrap, topics, len(stream))
    assert len(open_view(got)) > 20
    return got


def settle(
    bootstrap: str, topics: Topics, published: int, timeout: float = 120.0
) -> list[dict[str, Any]]:
    """The review topic once every published event has been processed and committed,
    and the topic has then stopped changing for a few reads. A quiet topic alone is not
    enough: a worker that has just taken partitions over may pause for seconds before
    it processes what the last owner left."""
    deadline = time.monotonic() + timeout
    wait_committed(bootstrap, topics, published, time.monotonic() + COMMIT_WAIT_SECONDS)
    last: dict[str, Any] | None = None
    stable = 0
    while True:
        messages = read_all(bootstrap, topics.review)
        view = final_view(messages)
        stable = stable + 1 if view == last and view else 0
        if stable >= 2:
            return messages
        if time.monotonic() > deadline:
            raise AssertionError(f"review topic still changing after {timeout}s")
        last = view
        time.sleep(1.0)


# A faust bug can stop a partition's commits after a backlog (robinhood/faust#625):
# then the wait gives up and the review topic's stability decides alone.
COMMIT_WAIT_SECONDS = 45.0


def wait_committed(bootstrap: str, topics: Topics, published: int, deadline: float) -> bool:
    """Until the group's committed offsets on the input cover ``published`` messages
    (right on the local broker, unlike its end offsets; they lag processing by up to a
    commit interval, which only makes the wait longer); False if ``deadline`` passes."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        while True:
            offsets = committed_offsets(admin, topics.group, topics.incidents, range(PARTITIONS))
            done = sum(max(offset, 0) for offset in offsets.values())
            if done >= published:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
    finally:
        admin.close()


def check(
    name: str,
    got: list[dict[str, Any]],
    expected: list[dict[str, Any]],
    dlq: list[dict[str, Any]],
    **extra: Any,
) -> None:
    assert open_view(got) == open_view(expected), "final open queue differs"
    assert late_view(got) == late_view(expected), "late recordings differ"
    invented = set(latest(got)) - set(latest(expected))
    assert not invented, f"flag ids the no-fault run never raised: {sorted(invented)[:5]}"
    assert final_view(got) == final_view(expected), "final flag statuses differ"
    assert dlq == [], "valid events in the dead letter topic"
    COUNTS.append(
        (
            name,
            {
                "flag_changes": len(got),
                "flags": len(latest(got)),
                "open": len(open_view(got)),
                "duplicates_republished": len(got) - len(expected),
                **extra,
            },
        )
    )


def chunks(messages: Messages, n: int, rng: random.Random) -> list[Messages]:
    cuts = sorted(rng.sample(range(1, len(messages)), n - 1))
    bounds = [0, *cuts, len(messages)]
    return [messages[a:b] for a, b in itertools.pairwise(bounds)]


def grows(before: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda m: len(m) > before


def changelog_of(env: dict[str, str]) -> str:
    """The cases table's changelog: a record for every event a worker processed."""
    return f"{env['CDI_CONSUMER_GROUP']}-cases-changelog"


def wait_processing(bootstrap: str, env: dict[str, str], before: int = 0) -> None:
    changelog = changelog_of(env)
    wait_for(lambda: read_all(bootstrap, changelog, idle=0.5), grows(before))


def test_kill_minus_nine_three_times(
    fault_broker: Broker, stream: Messages, no_fault: list[dict[str, Any]], tmp_path: Path
) -> None:
    bootstrap = fault_broker.bootstrap
    topics, env = event_clock_deployment(bootstrap)
    rng = random.Random(7)
    parts = chunks(stream, 4, rng)
    changelog = changelog_of(env)
    worker = Worker(env, tmp_path / "w0.log")
    worker.wait_ready()
    kills = 0
    try:
        for i, part in enumerate(parts):
            written = len(read_all(bootstrap, changelog, idle=0.5))
            publish(bootstrap, topics.incidents, part)
            if i == len(parts) - 1:
                break
            # The worker is processing this chunk: kill it somewhere in the middle.
            wait_processing(bootstrap, env, written)
            time.sleep(rng.uniform(0.0, 1.0))
            worker.kill()
            kills += 1
            worker = Worker(env, tmp_path / f"w{i + 1}.log")
            worker.wait_ready()
        got = settle(bootstrap, topics, len(stream))
    finally:
        worker.stop()
    check("kill -9 x3", got, no_fault, read_all(bootstrap, topics.dlq, idle=0.5), kills=kills)


def test_broker_paused_for_ten_seconds(
    fault_broker: Broker, stream: Messages, no_fault: list[dict[str, Any]], tmp_path: Path
) -> None:
    bootstrap = fault_broker.bootstrap
    topics, env = event_clock_deployment(bootstrap)
    half = len(stream) // 2
    with running(env, tmp_path / "worker.log") as worker:
        publish(bootstrap, topics.incidents, stream[:half])
        wait_processing(bootstrap, env, 20)
        os.kill(fault_broker.pid, signal.SIGSTOP)
        try:
            time.sleep(10)
        finally:
            os.kill(fault_broker.pid, signal.SIGCONT)
        assert worker.proc.poll() is None, "the worker gave up while the broker was paused"
        publish(bootstrap, topics.incidents, stream[half:])
        got = settle(bootstrap, topics, len(stream))
        assert worker.proc.poll() is None
    check("broker paused 10 s", got, no_fault, read_all(bootstrap, topics.dlq, idle=0.5))


def test_a_second_worker_joins_and_leaves(
    fault_broker: Broker, stream: Messages, no_fault: list[dict[str, Any]], tmp_path: Path
) -> None:
    bootstrap = fault_broker.bootstrap
    topics, env = event_clock_deployment(bootstrap)
    first, second, third = chunks(stream, 3, random.Random(11))
    a = Worker(env, tmp_path / "a.log")
    b: Worker | None = None
    try:
        a.wait_ready()
        publish(bootstrap, topics.incidents, first)
        wait_processing(bootstrap, env, 10)
        b = Worker(env, tmp_path / "b.log")
        b.wait_ready()
        publish(bootstrap, topics.incidents, second)
        time.sleep(2.0)
        b.stop()
        publish(bootstrap, topics.incidents, third)
        got = settle(bootstrap, topics, len(stream))
    finally:
        a.stop()
        if b is not None:
            b.stop()
    recoveries = (a.log.read_text() + b.log.read_text()).count("cases recovered")
    assert recoveries >= 4  # a alone, a and b, b alone, a alone again
    check(
        "rebalance (join, leave)",
        got,
        no_fault,
        read_all(bootstrap, topics.dlq, idle=0.5),
        recoveries=recoveries,
    )


def test_an_invalid_rules_file_mid_stream_keeps_the_rules_running(
    fault_broker: Broker, stream: Messages, no_fault: list[dict[str, Any]], tmp_path: Path
) -> None:
    bootstrap = fault_broker.bootstrap
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    topics, env = event_clock_deployment(
        bootstrap, CDI_RULES_DIR=str(rules), CDI_RULES_RELOAD_SECONDS="0.5"
    )
    half = len(stream) // 2
    with running(env, tmp_path / "worker.log") as worker:
        publish(bootstrap, topics.incidents, stream[:half])
        wait_processing(bootstrap, env, 20)
        (rules / "closure.yaml").write_text("id: CRI-RATIONALE\ntitle: [broken\n")
        wait_until(lambda: b"not reloaded" in worker.log.read_bytes(), "the reload failure")
        publish(bootstrap, topics.incidents, stream[half:])
        got = settle(bootstrap, topics, len(stream))
        assert worker.proc.poll() is None
        log = worker.log.read_text()
    assert log.count("not reloaded") == 1, "the broken file is reported once"
    assert "closure.yaml" in log
    check("invalid rules file", got, no_fault, read_all(bootstrap, topics.dlq, idle=0.5))


def wait_until(done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"no sign of {what} after {timeout}s")
        time.sleep(0.2)
