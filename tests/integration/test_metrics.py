"""A worker's /metrics after a known stream, checked by value against the replay."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cdi_stream.broker import free_port
from cdi_stream.engine import EngineConfig
from cdi_stream.metrics import Metrics
from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import SimConfig, write_jsonl
from tests.integration.workers import (
    PARTITIONS,
    Topics,
    events_as_messages,
    open_view,
    prepare,
    publish,
    read_all,
    running,
    wait_for,
)

FAR_FUTURE = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return samples_of(text)


def samples_of(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def by(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def stream(tmp_path: Path, incidents: int, seed: int) -> list[bytes]:
    path = tmp_path / "events.jsonl"
    write_jsonl(SimConfig(seed=seed, incidents=incidents), path)
    return path.read_bytes().splitlines(keepends=True)


def replay_metrics(
    book: RuleBook, lines: Iterable[bytes]
) -> tuple[Samples, list[dict[str, object]]]:
    import io

    metrics = Metrics()
    out = io.BytesIO()
    # The workers keep closed incidents for ten years (see Topics.env); so must the
    # replay, or incidents it drops would leave the open-flags gauge.
    config = EngineConfig(retention=3650 * 86400.0)
    replay(lines, book, out=out, until=FAR_FUTURE, metrics=metrics, config=config)
    flags = [json.loads(line) for line in out.getvalue().splitlines()]
    return samples_of(metrics.exposition().decode()), flags


def test_worker_metrics_match_the_stream(broker: str, book: RuleBook, tmp_path: Path) -> None:
    lines = stream(tmp_path, 200, seed=31)
    expected, flags = replay_metrics(book, lines)
    bad: list[tuple[bytes | None, bytes]] = [(b"b1", b"not json"), (b"b2", b"[]"), (b"b3", b"{")]
    topics = Topics()
    prepare(broker, topics)
    port = free_port()
    # A mistyped variable: ignored, and the worker's log says so.
    env = topics.env(broker, CDI_METRICS_PORT=str(port), CDI_PARTITION="2")
    want = open_view(flags)  # type: ignore[arg-type]
    with running(env, tmp_path / "worker.log"):
        before = scrape(port)
        assert value(before, "cdi_assigned_partitions") == PARTITIONS
        assert value(before, "cdi_rebalances_total") >= 1
        publish(broker, topics.incidents, [*events_as_messages(lines), *bad])
        wait_for(lambda: read_all(broker, topics.review), lambda m: open_view(m) == want)
        wait_for(lambda: read_all(broker, topics.dlq), lambda m: len(m) >= len(bad))
        got = scrape(port)

    log = (tmp_path / "worker.log").read_text()
    assert f"metrics on http://127.0.0.1:{port}/metrics" in log
    assert "ignored, not a setting: CDI_PARTITION (did you mean CDI_PARTITIONS?)" in log
    consumed = by(got, "cdi_events_consumed_total", "event_type")
    assert consumed == by(expected, "cdi_events_consumed_total", "event_type")
    assert sum(consumed.values()) == len([line for line in lines if line.strip()])
    assert by(got, "cdi_dead_letters_total", "kind") == {"not_json": 2, "not_object": 1}
    # The open queue, and so the open-flags gauge, does not depend on arrival order.
    for finding in ("crime_not_recorded", "wrong_classification", "rape_not_resolved"):
        for priority in ("P1", "P2", "P3"):
            key = {"finding": finding, "priority": priority}
            assert value(got, "cdi_open_flags", **key) == value(expected, "cdi_open_flags", **key)
    assert sum(by(got, "cdi_open_flags", "finding").values()) == len(want) > 0
    for name in ("cdi_crimes_recorded_in_time_total", "cdi_crimes_recorded_late_total"):
        assert value(got, name) == value(expected, name) > 0, name
    assert value(got, "cdi_open_deadlines") == 0  # the wall clock is past every deadline
    assert value(got, "cdi_publish_to_flag_seconds_count") > 0
    assert value(got, "cdi_rule_evaluation_seconds_count") >= sum(consumed.values())
    lags = by(got, "cdi_watermark_lag_seconds", "partition")
    assert set(lags) <= {str(p) for p in range(PARTITIONS)} and lags
    assert all(lag > 0 for lag in lags.values())  # simulated dates lie in the past
    editions = by(got, "cdi_rules_info", "edition")
    assert set(editions) == {e.id for e in book.editions}
    assert {dict(k[1])["hash"] for k in got if k[0] == "cdi_rules_info"} == {book.content_hash}
    assert value(got, "process_resident_memory_bytes") > 0
