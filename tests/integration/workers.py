"""Running real workers against the test broker, and reading what they publish."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from cdi_stream.broker import create_topics
from cdi_stream.deployment import PrivateDeployment

PARTITIONS = 4


@functools.cache
def _data_root() -> Path:
    """One temporary directory for the data directories of every worker in this run.

    A worker without ``CDI_DATA_DIR`` creates ``<group>-data`` in its working directory,
    even with the in-memory store; a test must not leave that in the checkout. Removed
    when the run ends, once every worker has stopped.
    """
    root = Path(tempfile.mkdtemp(prefix="cdi-test-data-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@dataclass(frozen=True)
class Topics(PrivateDeployment):
    """A private deployment per test, so tests never share state."""

    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")

    def env(self, bootstrap: str, **variables: str) -> dict[str, str]:
        defaults = {
            # Workers of one deployment share it, as they would share a working directory.
            "CDI_DATA_DIR": str(_data_root() / self.prefix),
            "CDI_PROFILE": "local",
            "CDI_CLOCK": "hybrid",
            "CDI_PARTITIONS": str(PARTITIONS),
            # Simulated dates lie months behind the wall clock that drives the
            # workers: keep closed incidents for longer than that.
            "CDI_RETENTION_DAYS": "3650",
            # Several workers share this machine: no fixed metrics port.
            "CDI_METRICS_PORT": "0",
        }
        return super().env(bootstrap, **{**defaults, **variables})


def interruptible() -> None:
    """``preexec_fn`` for a child that is stopped with SIGINT: a shell that runs the
    suite in the background leaves SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Worker:
    """A ``cdi-stream worker`` subprocess with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cdi_stream.cli", "worker"],
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"cases recovered" in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.tail()}")
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """kill -9: no shutdown, no final commit, no flush."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._file.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._file.close()

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@contextmanager
def running(env: dict[str, str], log: Path) -> Iterator[Worker]:
    worker = Worker(env, log)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def prepare(bootstrap: str, topics: Topics) -> None:
    create_topics(
        bootstrap,
        {t: PARTITIONS for t in (topics.incidents, topics.decisions, topics.review, topics.dlq)},
    )


def publish(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    count = 0
    for key, value in messages:
        producer.send(topic, key=key, value=value)
        count += 1
    producer.flush()
    producer.close()
    return count


def events_as_messages(lines: Iterable[bytes]) -> Iterator[tuple[bytes | None, bytes]]:
    for line in lines:
        if line.strip():
            yield json.loads(line)["incident_id"].encode(), line.rstrip(b"\n")


def read_all(
    bootstrap: str, topic: str, idle: float = 1.5, partitions: int = PARTITIONS
) -> list[dict[str, Any]]:
    """Every message on the topic so far, read until it stays quiet for ``idle``
    seconds (end offsets from the test broker cannot be trusted)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=int(idle * 1000),
    )
    parts = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out = [json.loads(m.value) for m in consumer]
    consumer.close()
    return out


def wait_for(
    read: Callable[[], list[dict[str, Any]]],
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 90.0,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    messages = read()
    while not done(messages):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s ({len(messages)} messages)")
        time.sleep(1.0)
        messages = read()
    return messages


def latest(messages: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in messages:
        if m["flag_id"] not in out or out[m["flag_id"]]["revision"] < m["revision"]:
            out[m["flag_id"]] = m
    return out


def open_view(messages: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The open queue, with everything that must not depend on arrival order."""
    return sorted(
        (
            m["flag_id"],
            m["finding"],
            m["priority"],
            json.dumps(m["expected"]),
            json.dumps(m["observed"]),
            m["due_at"],
        )
        for m in latest(messages).values()
        if m["status"] == "open"
    )


def late_view(messages: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(
        m["flag_id"]
        for m in latest(messages).values()
        if m["finding"] == "late_recording" and m["status"] != "withdrawn"
    )
