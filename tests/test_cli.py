"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdi_stream.cli import app
from tests.findings import ALL_FINDINGS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "incidents.jsonl"
SAMPLE_FLAGS = ROOT / "examples" / "flags.jsonl"
runner = CliRunner()


def test_replay_of_the_shipped_sample_matches_the_shipped_flags(tmp_path: Path) -> None:
    out = tmp_path / "flags.jsonl"
    result = runner.invoke(
        app, ["replay", str(SAMPLE), "--until", "2026-11-26T00:00:00Z", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == SAMPLE_FLAGS.read_bytes()
    findings = {json.loads(line)["finding"] for line in out.read_text().splitlines()}
    assert findings == ALL_FINDINGS
    assert "events read: " in result.stderr
    assert "flags by finding" in result.stderr


def test_replay_reports_bad_lines_and_carries_on(tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines()
    bad = [
        lines[0],
        "not json at all",
        '{"schema_version": 1, "event_id": "x", "event_type": "incident.exploded",'
        ' "incident_id": "I", "occurred_at": "2026-11-23T00:00:00Z"}',
        lines[1].replace('Z"', '"', 1),
        "",
        lines[2],
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(bad) + "\n")
    result = runner.invoke(app, ["replay", str(events), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0, result.output
    assert "line 2: not_json" in result.stderr
    assert "line 3: unknown_event_type" in result.stderr
    assert "line 4: schema (occurred_at)" in result.stderr
    assert "events read: 2  rejected: 3" in result.stderr
    strict = runner.invoke(
        app, ["replay", str(events), "--strict", "-q", "-o", str(tmp_path / "s")]
    )
    assert strict.exit_code == 1


def test_replay_reads_standard_input() -> None:
    result = runner.invoke(app, ["replay", "-", "-q"], input=SAMPLE.read_bytes())
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") > 10
    assert all(json.loads(line)["flag_id"] for line in result.stdout.splitlines())


def test_replay_missing_file_and_bad_until() -> None:
    assert runner.invoke(app, ["replay", "/no/such/file"]).exit_code == 2
    bad = runner.invoke(app, ["replay", str(SAMPLE), "--until", "2026-11-26T00:00:00"])
    assert bad.exit_code == 2
    assert "timezone" in bad.output


def test_rules_check_passes_on_shipped_rules() -> None:
    result = runner.invoke(app, ["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout


def test_rules_check_reports_file_and_rule(tmp_path: Path) -> None:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    text = (
        (target / "closure.yaml")
        .read_text()
        .replace("has_rationale: false", "has_rationale: maybe", 1)
    )
    (target / "closure.yaml").write_text(text)
    result = runner.invoke(app, ["rules", "check", str(target)])
    assert result.exit_code == 2
    assert "closure.yaml: CRI-RATIONALE: when.has_rationale" in result.stderr


def test_replay_refuses_bad_rules(tmp_path: Path) -> None:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    (target / "broken.yaml").write_text("id: [")
    result = runner.invoke(app, ["replay", str(SAMPLE), "--rules", str(target)])
    assert result.exit_code == 2
    assert "broken.yaml" in result.stderr


def test_schemas_check_and_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schemas", "export", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["schemas", "check", "--dir", str(tmp_path)]).exit_code == 0
    first = sorted(tmp_path.iterdir())[0]
    first.write_text("{}\n")
    stale = runner.invoke(app, ["schemas", "check", "--dir", str(tmp_path)])
    assert stale.exit_code == 1
    assert "cdi-stream schemas export" in stale.stderr


def test_console_script_runs() -> None:
    script = Path(sys.executable).parent / "cdi-stream"
    assert script.exists(), "the package is installed with its console script"
    done = subprocess.run(
        [str(script), "rules", "check"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cdi_stream.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "replay" in done.stdout


def test_simulate_writes_a_reproducible_stream_and_truth(tmp_path: Path) -> None:
    a, b, truth = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "truth.jsonl"
    args = ["simulate", "--incidents", "40", "--seed", "9"]
    assert runner.invoke(app, [*args, "--out", str(a), "--truth", str(truth)]).exit_code == 0
    assert runner.invoke(app, [*args, "--out", str(b)]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert len(rows) == 40
    assert {r["incident_id"] for r in rows} == {
        json.loads(line)["incident_id"] for line in a.read_text().splitlines()
    }
    replayed = runner.invoke(app, ["replay", str(a), "-q", "--strict"])
    assert replayed.exit_code == 0


def test_simulate_rejects_bad_rates(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "--out", str(tmp_path / "x"), "--unrecorded", "0.9", "--late", "0.5"]
    )
    assert result.exit_code == 2


def test_simulate_reports_an_unreachable_broker() -> None:
    result = runner.invoke(
        app, ["simulate", "--incidents", "2", "--publish", "--bootstrap", "127.0.0.1:1"]
    )
    assert result.exit_code == 3
    assert "cannot publish to 127.0.0.1:1" in result.stderr


def test_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CDI_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CDI_SASL_USERNAME", "cdi")
    monkeypatch.setenv("CDI_SASL_PASSWORD", "correct-horse-battery")
    for args in (["config"], ["config", "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "correct-horse-battery" not in result.output
        assert "***" in result.output


def test_config_names_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_CLOCK", "sundial")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "CDI_CLOCK" in result.stderr


def test_report_writes_html_and_json(tmp_path: Path) -> None:
    html, data = tmp_path / "r.html", tmp_path / "r.json"
    result = runner.invoke(
        app,
        ["report", str(SAMPLE), "-o", str(html), "--json", str(data), "--yearly-volume", "1000"],
    )
    assert result.exit_code == 0, result.output
    assert "not an inspection grade" in html.read_text()
    figures = json.loads(data.read_text())
    assert figures
    assert runner.invoke(app, ["report", "/no/such/file"]).exit_code == 2
