"""Metrics of a known stream, checked by value against the replay and the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from cdi_stream.cli import app
from cdi_stream.metrics import Metrics
from cdi_stream.replay import ReplaySummary, replay
from cdi_stream.report.build import build_report
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import DefectRates, SimConfig, Truth, write_jsonl

ALLOWED_LABELS = {"event_type", "kind", "finding", "status", "priority", "partition"}
ALLOWED_LABELS |= {"edition", "hash", "result", "le"}


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def family_total(metrics: Metrics, name: str) -> float:
    return sum(s.value for m in metrics.registry.collect() for s in m.samples if s.name == name)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Truth]]:
    path = tmp_path_factory.mktemp("metrics") / "events.jsonl"
    truths = write_jsonl(SimConfig(seed=21, incidents=1500), path)
    return path, truths


@pytest.fixture(scope="module")
def replayed(stream: tuple[Path, list[Truth]], book: RuleBook) -> tuple[Metrics, ReplaySummary]:
    metrics = Metrics()
    with stream[0].open("rb") as lines:
        summary = replay(lines, book, metrics=metrics)
    return metrics, summary


def test_counts_equal_what_the_replay_did(replayed: tuple[Metrics, ReplaySummary]) -> None:
    metrics, summary = replayed
    assert family_total(metrics, "cdi_events_consumed_total") == summary.events
    assert family_total(metrics, "cdi_flag_changes_total") == summary.flag_changes
    still_open = [f for f, status in summary.final_status.values() if status == "open"]
    assert family_total(metrics, "cdi_open_flags") == len(still_open) > 0
    for finding in set(still_open):
        by_priority = [
            sample(metrics, "cdi_open_flags", finding=finding, priority=p)
            for p in ("P1", "P2", "P3")
        ]
        assert sum(by_priority) == still_open.count(finding), finding


def test_share_recorded_within_24_hours_equals_the_report(
    stream: tuple[Path, list[Truth]], replayed: tuple[Metrics, ReplaySummary], book: RuleBook
) -> None:
    metrics, _ = replayed
    report = build_report(stream[0], book=book)
    share = report.timeliness.overall.within_24h
    in_time = sample(metrics, "cdi_crimes_recorded_in_time_total")
    late = sample(metrics, "cdi_crimes_recorded_late_total")
    assert (in_time, in_time + late) == (share.numerator, share.denominator)
    assert sample(metrics, "cdi_time_to_record_seconds_count") == in_time + late
    within = sample(metrics, "cdi_time_to_record_seconds_bucket", le="86400.0")
    assert within >= in_time  # the bucket also holds records made in time of a later clock


def test_share_recorded_within_24_hours_equals_the_truth(tmp_path: Path, book: RuleBook) -> None:
    rates = DefectRates(
        unrecorded=0, late=0.2, misclassified=0, undercounted=0, wrongly_cancelled=0
    )
    path = tmp_path / "late.jsonl"
    truths = write_jsonl(SimConfig(seed=5, incidents=800, defects=rates), path)
    metrics = Metrics()
    with path.open("rb") as lines:
        replay(lines, book, metrics=metrics)
    within = sum(t.recordable_subjects for t in truths if t.recorded_within_24h)
    recorded = sum(t.recordable_subjects for t in truths)
    in_time = sample(metrics, "cdi_crimes_recorded_in_time_total")
    late = sample(metrics, "cdi_crimes_recorded_late_total")
    assert (in_time, late) == (within, recorded - within)
    assert 0 < late < recorded


def test_breaches_count_the_subjects_left_unrecorded_past_their_deadline(
    tmp_path: Path, book: RuleBook
) -> None:
    rates = DefectRates(
        unrecorded=0.3, late=0, misclassified=0, undercounted=0, wrongly_cancelled=0
    )
    path = tmp_path / "unrecorded.jsonl"
    truths = write_jsonl(SimConfig(seed=9, incidents=600, defects=rates), path)
    metrics = Metrics()
    with path.open("rb") as lines:
        replay(lines, book, metrics=metrics)
    breaches = sample(metrics, "cdi_deadline_breaches_total")
    # Every recordable subject the simulator left uncovered breaches once, and nothing
    # else does: the other incidents were all recorded in time.
    left = [t for t in truths if t.defect == "unrecorded"]
    uncovered = sum(t.recordable_subjects - t.covered_subjects for t in left)
    assert uncovered > 0
    assert breaches == uncovered
    assert all(t.recordable_subjects == t.covered_subjects for t in truths if t.defect is None)


def test_open_deadlines_while_the_stream_is_running(book: RuleBook) -> None:
    from tests.engine.scenario import T0, Incident

    events = [
        *Incident("INC-1").reported(0).events,
        *Incident("INC-2").reported(1, disclosures=[("8N", "V1"), ("8N", "V2")]).events,
        *Incident("INC-3").reported(2).crime(3).events,
    ]
    metrics = Metrics()
    lines = [json.dumps(e).encode() for e in events]
    replay(lines, book, metrics=metrics)
    assert sample(metrics, "cdi_open_deadlines") == 3
    expected = T0.timestamp() + 24 * 3600
    assert sample(metrics, "cdi_next_deadline_timestamp_seconds") == expected
    assert sample(metrics, "cdi_crimes_recorded_in_time_total") == 1


def test_rejected_lines_count_as_dead_letters_by_kind(book: RuleBook) -> None:
    metrics = Metrics()
    replay(
        [b"{", b"[]", b'{"event_type": "nope"}', b"x" * 100],
        book,
        metrics=metrics,
        max_line_bytes=50,
    )
    kinds = {
        s.labels["kind"]: s.value
        for m in metrics.registry.collect()
        for s in m.samples
        if s.name == "cdi_dead_letters_total"
    }
    assert sum(kinds.values()) == 4
    assert kinds["not_json"] >= 1 and kinds["too_large"] == 1


def test_no_label_carries_an_identifier(
    stream: tuple[Path, list[Truth]], replayed: tuple[Metrics, ReplaySummary]
) -> None:
    metrics, _ = replayed
    text = metrics.exposition().decode()
    identifiers: set[str] = set()
    for line in stream[0].read_text().splitlines()[:2000]:
        event = json.loads(line)
        identifiers.add(event["incident_id"])
        identifiers.update(v["victim_ref"] for v in event.get("victims", []))
        if "crime_id" in event:
            identifiers.add(event["crime_id"])
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert set(s.labels) <= ALLOWED_LABELS, (s.name, s.labels)
            assert not set(s.labels.values()) & identifiers, (s.name, s.labels)
    assert not re.search(r"flag-[0-9a-f]{24}", text)


def test_replay_writes_metrics_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "metrics.prom"
    root = Path(__file__).resolve().parents[1]
    result = CliRunner().invoke(
        app,
        [
            "replay",
            str(root / "examples" / "incidents.jsonl"),
            "--until",
            "2026-11-26T00:00:00Z",
            "--out",
            str(tmp_path / "flags.jsonl"),
            "--metrics",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    families = {f.name: f for f in text_string_to_metric_families(out.read_text())}
    consumed = sum(
        s.value for s in families["cdi_events_consumed"].samples if s.name.endswith("_total")
    )
    assert consumed == 32
    opened = sum(s.value for s in families["cdi_open_flags"].samples)
    assert opened == 10  # the README's replay table: ten flags still open
    assert families["cdi_rules_info"].samples


def test_flags_of_a_dropped_incident_leave_the_open_flags_gauge(book: RuleBook) -> None:
    from tests.engine.scenario import Incident

    events = Incident("INC-1").reported(0).closed(1, "non_crime", "x").events
    events += Incident("INC-2", tag="b").reported(24 * 40).events  # 40 days later
    metrics = Metrics()
    replay([json.dumps(e).encode() for e in events], book, metrics=metrics)
    opened = {
        s.labels["finding"]: s.value
        for m in metrics.registry.collect()
        for s in m.samples
        if s.name == "cdi_open_flags"
    }
    assert "crime_not_recorded" not in opened, "INC-1 was dropped 30 days after closing"
    assert sample(metrics, "cdi_open_deadlines") == 1  # INC-2's


def test_a_corrected_warning_is_not_counted_as_another_warning(book: RuleBook) -> None:
    """Regression: every open revision of a warning counted as a warning given, so a
    disclosure corrected three times after the 12-hour warning counted four."""
    import datetime as dt
    import io

    from tests.engine.scenario import T0, Incident

    incident = Incident().reported(0, disclosures=[("58A", "V1")])
    for hours, code in ((13, "8N"), (14, "105A"), (15, "8N")):
        disclosure = {"disclosure_id": "D1", "offence_code": code, "victim_ref": "V1"}
        incident.updated(hours, disclosures=[disclosure])
    metrics, out = Metrics(), io.BytesIO()
    lines = [json.dumps(e).encode() for e in incident.events]
    replay(lines, book, metrics=metrics, out=out, until=T0 + dt.timedelta(hours=21))
    revisions = [
        m for m in map(json.loads, out.getvalue().splitlines())
        if m["finding"] == "deadline_warning" and m["status"] == "open"
    ]  # fmt: skip
    assert len(revisions) > 2, "the corrections did revise the open warning"
    assert sample(metrics, "cdi_deadline_warnings_total") == 2  # at 12 h and at 20 h


def test_repeated_events_are_counted_as_duplicates(book: RuleBook) -> None:
    """A repeated event_id is ignored; the count makes a producer reusing ids visible."""
    from tests.engine.scenario import Incident

    events = Incident().reported(0).crime(1).events
    conflicting = dict(events[1], offence_code="105A")  # same id, other content
    metrics = Metrics()
    lines = [json.dumps(e).encode() for e in (*events, events[0], conflicting)]
    summary = replay(lines, book, metrics=metrics)
    assert summary.duplicates == 2
    assert sample(metrics, "cdi_duplicate_events_total") == 2
