"""The command line, run as a user runs it."""

from __future__ import annotations

import datetime as dt
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
    assert "127.0.0.1:1" in result.stderr


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


def test_replay_refuses_to_write_over_its_own_input(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    shutil.copy(SAMPLE, events)
    result = runner.invoke(app, ["replay", str(events), "--out", str(events)])
    assert result.exit_code == 2
    assert "also named for another file" in result.stderr
    assert events.read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ["replay", "{events}", "--out", "{dir}"],
        ["replay", "{events}", "--out", "{dir}/missing/flags.jsonl"],
        ["replay", "{events}", "--metrics", "{dir}"],
        ["report", "{events}", "--out", "{dir}"],
        ["report", "{events}", "--json", "{dir}"],
        ["simulate", "--incidents", "5", "--out", "{dir}"],
        ["schemas", "export", "--dir", "{events}"],
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, args: list[str]
) -> None:
    events = tmp_path / "events.jsonl"
    shutil.copy(SAMPLE, events)
    argv = [a.format(events=events, dir=tmp_path) for a in args]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error" in result.stderr
    assert "events read" not in result.stderr  # nothing ran
    assert events.read_bytes() == SAMPLE.read_bytes()


def test_a_directory_given_as_the_events_file_is_named_as_such(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a file" in result.stderr and "directory" in result.stderr


def test_a_bad_time_names_its_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(SAMPLE), "--until", "2026-11-26"])
    assert result.exit_code == 2
    assert "--until" in result.output + result.stderr


def test_until_before_the_last_event_is_pointed_out(tmp_path: Path) -> None:
    out = tmp_path / "flags.jsonl"
    result = runner.invoke(
        app, ["replay", str(SAMPLE), "--until", "2020-01-01T00:00:00Z", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "before the last event" in result.stderr
    quiet = runner.invoke(
        app, ["replay", str(SAMPLE), "--until", "2030-01-01T00:00:00Z", "-o", str(out)]
    )
    assert "before the last event" not in quiet.stderr


def test_a_byte_order_mark_does_not_cost_the_first_event(tmp_path: Path) -> None:
    events = tmp_path / "bom.jsonl"
    events.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    plain = runner.invoke(app, ["replay", str(SAMPLE), "-o", str(tmp_path / "a")])
    marked = runner.invoke(app, ["replay", str(events), "--strict", "-o", str(tmp_path / "b")])
    assert marked.exit_code == 0, marked.stderr
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert plain.stderr.splitlines()[0] == marked.stderr.splitlines()[0]


def test_report_counts_unreadable_flag_and_decision_lines(tmp_path: Path) -> None:
    argv = ["report", str(SAMPLE), "--flags", str(SAMPLE), "--decisions", str(SAMPLE)]
    result = runner.invoke(app, [*argv, "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    lines = len(SAMPLE.read_text().splitlines())
    assert f"rejected {lines} lines of the --flags file" in result.stderr
    assert f"rejected {lines} lines of the --decisions file" in result.stderr
    strict = runner.invoke(app, [*argv, "--strict", "-o", str(tmp_path / "s.html")])
    assert strict.exit_code == 1


def test_rules_check_follows_cdi_rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "cancellation.yaml").write_text("")
    monkeypatch.setenv("CDI_RULES_DIR", str(rules))
    result = runner.invoke(app, ["rules", "check"])
    assert result.exit_code == 2
    assert "cancellation.yaml" in result.stderr
    assert str(rules) in result.stderr


def test_config_says_what_unset_settings_resolve_to(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CDI_RULES_DIR", "CDI_FETCH_MAX_WAIT_MS", "CDI_METRICS_HOST", "CDI_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDI_PROFILE", "local")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "# CDI_FETCH_MAX_WAIT_MS unset: 100" in lines
    assert "# CDI_METRICS_HOST unset: 127.0.0.1" in lines
    assert f"# CDI_RULES_DIR unset: {ROOT / 'rules'}" in lines
    assert "CDI_FETCH_MAX_WAIT_MS=" in lines  # still pastes back as unset
    monkeypatch.setenv("CDI_FETCH_MAX_WAIT_MS", "250")
    again = runner.invoke(app, ["config"]).stdout.splitlines()
    assert "CDI_FETCH_MAX_WAIT_MS=250" in again
    assert not any(line.startswith("# CDI_FETCH_MAX_WAIT_MS") for line in again)


def test_config_fails_when_the_worker_could_not_load_its_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDI_RULES_DIR", str(tmp_path / "nowhere"))
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "not a directory" in result.stderr


def test_replay_uses_the_engine_settings_a_worker_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["replay", str(SAMPLE), "--until", "2026-11-26T00:00:00Z", "-q"]
    default = runner.invoke(app, [*argv, "-o", str(tmp_path / "a")])
    monkeypatch.setenv("CDI_DEADLINE_HOURS", "48")
    monkeypatch.setenv("CDI_SECOND_WARNING_HOURS", "40")
    longer = runner.invoke(app, [*argv, "-o", str(tmp_path / "b")])
    assert default.exit_code == longer.exit_code == 0

    def first_due(path: Path) -> dict[str, dt.datetime]:
        out: dict[str, dt.datetime] = {}
        for line in path.read_text().splitlines():
            flag = json.loads(line)
            if flag["due_at"] is not None:
                due = dt.datetime.fromisoformat(flag["due_at"].replace("Z", "+00:00"))
                out.setdefault(flag["flag_id"], due)
        return out

    before, after = first_due(tmp_path / "a"), first_due(tmp_path / "b")
    shared = before.keys() & after.keys()
    assert shared
    assert all(after[f] - before[f] == dt.timedelta(hours=24) for f in shared)
    monkeypatch.setenv("CDI_DEADLINE_HOURS", "inf")
    refused = runner.invoke(app, [*argv, "-o", str(tmp_path / "c")])
    assert refused.exit_code == 2
    assert "CDI_DEADLINE_HOURS" in refused.stderr


def test_report_says_when_the_events_end_before_the_deadlines(tmp_path: Path) -> None:
    argv = ["report", str(SAMPLE), "-o", str(tmp_path / "r.html"), "--to", "2026-11-24T12:00:00Z"]
    early = runner.invoke(app, argv)
    assert early.exit_code == 0, early.output
    assert "left out; give --as-of" in early.stderr
    assert "Not final." in (tmp_path / "r.html").read_text()
    later = runner.invoke(app, [*argv, "--as-of", "2026-11-26T00:00:00Z"])
    assert later.exit_code == 0, later.output
    assert "--as-of" not in later.stderr
    assert "Not final." not in (tmp_path / "r.html").read_text()


def test_report_refuses_one_file_for_both_outputs(tmp_path: Path) -> None:
    same = tmp_path / "out"
    result = runner.invoke(app, ["report", str(SAMPLE), "-o", str(same), "--json", str(same)])
    assert result.exit_code == 2
    assert "--json" in result.stderr and not same.exists()


def test_config_compiles_the_rules_as_the_worker_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some limits (the size of a rule's condition) are only checked when the rules
    compile: ``config`` must refuse what the worker would refuse."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    branches = "\n".join(f"    - has_rationale: {'true' if i % 2 else 'false'}" for i in range(40))
    (rules / "wide.yaml").write_text(
        "id: WIDE\ntitle: Wide\nfinding: cri_without_rationale\npriority: P3\n"
        "reference: test\neffective_from: 2000-01-01\nscope: closure\n"
        f"when:\n  closure_type: cri\n  any:\n{branches}\nevent_time: at\n"
        "explanation: Incident {incident_id} test.\n"
    )
    monkeypatch.setenv("CDI_RULES_DIR", str(rules))
    config = runner.invoke(app, ["config"])
    assert config.exit_code == 2
    assert "WIDE" in config.stderr and "at most 32" in config.stderr


def test_backtest_refuses_to_write_over_its_events_or_one_output_twice(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    shutil.copy(SAMPLE, events)
    rules = str(ROOT / "rules")
    base = ["backtest", str(events), "--rules-a", rules, "--rules-b", rules]
    over_input = runner.invoke(app, [*base, "--json", str(events)])
    assert over_input.exit_code == 2
    assert "writing would lose it" in over_input.stderr
    assert events.read_bytes() == SAMPLE.read_bytes()
    report = tmp_path / "diff"
    twice = runner.invoke(app, [*base, "--json", str(report), "--html", str(report)])
    assert twice.exit_code == 2
    assert not report.exists()


def test_a_dash_for_an_output_file_means_standard_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    replay = runner.invoke(
        app, ["replay", str(SAMPLE), "--until", "2026-11-26T00:00:00Z", "--out", "-"]
    )
    assert replay.exit_code == 0
    assert replay.stdout.encode() == SAMPLE_FLAGS.read_bytes()
    report = runner.invoke(app, ["report", str(SAMPLE), "-o", "-", "--quiet"])
    assert report.exit_code == 0
    assert report.stdout.startswith("<!doctype html>")
    both = runner.invoke(app, ["report", str(SAMPLE), "-o", "-", "--json", "-"])
    assert both.exit_code == 2
    simulate = runner.invoke(app, ["simulate", "--incidents", "3", "--out", "-"])
    assert simulate.exit_code == 0
    assert all(json.loads(line)["incident_id"] for line in simulate.stdout.splitlines())
    assert list(tmp_path.iterdir()) == []  # no file named "-"


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["worker", "--loglevel", "verbose"], "--loglevel"),
        (["broker", "--port", "70000"], "--port"),
        (["broker", "--port", "-1"], "--port"),
        (["demo", "--speed", "0"], "--speed"),
        (["demo", "--rate", "-5"], "--rate"),
        (["demo", "--incidents", "0"], "--incidents"),
    ],
)
def test_bad_options_are_usage_errors_before_anything_starts(argv: list[str], option: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_report_on_a_file_with_no_valid_events_says_so(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"not": "an event"}\n')
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(events), "-o", str(out), "--quiet"])
    assert result.exit_code == 2
    assert "no events to report on" in result.stderr
    assert "1 of 1 lines rejected" in result.stderr
    assert not out.exists()


def test_schemas_check_names_a_missing_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schemas", "check", "--dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no schemas directory" in result.stderr
    assert "out of date" not in result.stderr


def test_the_entry_module_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cdi_stream.entry", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "replay" in done.stdout


@pytest.mark.parametrize("value", ["[/b]", "[bold]"])
def test_rules_check_prints_problems_literally(tmp_path: Path, value: str) -> None:
    target = tmp_path / "rules"
    target.mkdir()
    shutil.copy(ROOT / "rules" / "editions.yaml", target / "editions.yaml")
    (target / "x.yaml").write_text(
        "id: X-1\ntitle: A test rule\nfinding: cri_without_rationale\npriority: P3\n"
        "reference: test\neffective_from: 2000-01-01\nscope: closure\n"
        "when: {closure_type: cri}\nevent_time: at\n"
        "explanation: Incident {incident_id} closed as cri, test rule.\n"
        f'expected: {{a: "{value}"}}\n'
    )
    result = runner.invoke(app, ["rules", "check", str(target)])
    assert result.exit_code == 2, result.output
    assert f"x.yaml: X-1: expected.a: '{value}' is not a value of scope closure" in result.stderr


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["replay", str(SAMPLE), "--metrics", "-"], "--metrics"),
        (["simulate", "--incidents", "2", "--out", "{dir}/s.jsonl", "--truth", "-"], "--truth"),
        (
            ["backtest", str(SAMPLE), "--rules-a", "rules", "--rules-b", "rules", "--html", "-"],
            "--html",
        ),
        (["schemas", "export", "--dir", "-"], "--dir"),
    ],
)
def test_a_dash_where_standard_output_is_not_supported_is_refused(
    argv: list[str], option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, [a.replace("{dir}", str(tmp_path)) for a in argv])
    assert result.exit_code == 2
    assert f"{option}: give a " in result.stderr and "not supported here" in result.stderr
    assert not (ROOT / "-").exists()


def test_a_data_directory_that_cannot_be_made_is_a_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: faust failed with a FileExistsError traceback (exit 1) after the
    topics were set up; now the worker stops first, with exit 2, naming the setting."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CDI_DATA_DIR", str(blocker / "data"))
    monkeypatch.setenv("CDI_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    result = runner.invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "cannot use" in result.stderr and "CDI_DATA_DIR" in result.stderr


CLI = [sys.executable, "-m", "cdi_stream.entry"]


def _flags(result_stdout: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in result_stdout.splitlines()]


def test_until_before_the_last_event_still_fires_what_is_due_at_it(tmp_path: Path) -> None:
    """An ``until`` before the last event used to skip the final step that fires what
    falls due exactly at the last event's time, so it dropped flags."""
    reported = json.loads(SAMPLE.read_text().splitlines()[0])
    later = {**reported, "event_id": "tick", "incident_id": "OTHER", "disclosures": []}
    start = dt.datetime.fromisoformat(reported["occurred_at"].replace("Z", "+00:00"))
    later["occurred_at"] = later["reported_at"] = (start + dt.timedelta(hours=24)).isoformat()
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(reported) + "\n" + json.dumps(later) + "\n")
    plain = subprocess.run(
        [*CLI, "replay", str(events), "-q"],
        capture_output=True,
        check=True,
    )
    early = subprocess.run(
        [*CLI, "replay", str(events), "-q", "--until", "2000-01-01T00:00:00Z"],
        capture_output=True,
        check=True,
    )
    assert "crime_not_recorded" in {f["finding"] for f in _flags(plain.stdout)}
    assert early.stdout == plain.stdout


def test_a_failed_write_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    result = subprocess.run(
        [*CLI, "replay", str(SAMPLE), "-q", "--out", "/dev/full"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "cannot write /dev/full" in result.stderr
    assert "Traceback" not in result.stderr


def test_events_from_a_pipe_or_process_substitution_are_read(tmp_path: Path) -> None:
    """/dev/stdin, a named pipe or ``<(zcat ...)`` exist but are not regular files; they
    were refused as "no such file"."""
    expected = subprocess.run(
        [*CLI, "replay", str(SAMPLE), "-q"],
        capture_output=True,
        check=True,
    ).stdout
    # ``input=`` makes standard input a pipe (a file handle would make /dev/stdin a
    # regular file, which was always accepted).
    piped = subprocess.run(
        [*CLI, "replay", "/dev/stdin", "-q"],
        input=SAMPLE.read_bytes(),
        capture_output=True,
        check=True,
    ).stdout
    assert piped == expected


def test_a_line_of_exactly_the_limit_is_accepted_and_a_longer_one_is_not_held(
    tmp_path: Path,
) -> None:
    """The line ending used to count towards the 1 MiB message limit; and an overlong
    line was read whole before it was refused."""
    from cdi_stream.contract import DEFAULT_MAX_BYTES

    first = json.loads(SAMPLE.read_text().splitlines()[0])
    first["padding"] = ""
    body = json.dumps(first, separators=(",", ":"))
    first["padding"] = "x" * (DEFAULT_MAX_BYTES - len(body))
    exact = json.dumps(first, separators=(",", ":")).encode()
    assert len(exact) == DEFAULT_MAX_BYTES
    events = tmp_path / "events.jsonl"
    events.write_bytes(exact + b"\r\n" + exact[:-2] + b'x"}\n' + b"{" * 5_000_000 + b"\n")
    result = runner.invoke(app, ["replay", str(events), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "events read: 1  rejected: 2" in result.stderr
    assert f"line 2: too_large: message is {DEFAULT_MAX_BYTES + 1} bytes" in result.stderr
    assert "line 3: too_large: message is 5000000 bytes" in result.stderr


def test_bounded_lines_holds_at_most_the_limit() -> None:
    import io

    from cdi_stream.replay import OversizeLine, bounded_lines

    data = b"a" * 10 + b"\n" + b"b" * 10 + b"\r\n" + b"c" * 30 + b"\r\n" + b"d" * 12
    lines = list(bounded_lines(io.BytesIO(data), 10))
    assert lines[0] == b"a" * 10 + b"\n"
    assert [
        (type(x), len(x) if not isinstance(x, OversizeLine) else x.size) for x in lines[1:]
    ] == [
        (bytes, 12),
        (OversizeLine, 30),
        (OversizeLine, 12),
    ]


def test_a_reader_that_stops_early_ends_the_replay_quietly(tmp_path: Path) -> None:
    """``replay ... | head`` printed "cannot write standard output: Broken pipe"."""
    from cdi_stream.simulate import SimConfig, write_jsonl

    events = tmp_path / "events.jsonl"
    write_jsonl(SimConfig(seed=3, incidents=1500), events)  # far more than a pipe holds
    proc = subprocess.Popen(
        [*CLI, "replay", str(events), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def test_line_endings_and_a_byte_order_mark_do_not_count_towards_the_limit(
    tmp_path: Path,
) -> None:
    """A BOM before a first line of exactly 1 MiB, or a lone CR after a last one, made
    it too large; and an oversize first line was reported as not JSON."""
    from cdi_stream.contract import DEFAULT_MAX_BYTES

    first = json.loads(SAMPLE.read_text().splitlines()[0])
    first["padding"] = ""
    body = json.dumps(first, separators=(",", ":"))
    first["padding"] = "x" * (DEFAULT_MAX_BYTES - len(body))
    exact = json.dumps(first, separators=(",", ":")).encode()
    second = json.loads(SAMPLE.read_text().splitlines()[1])
    cases = {
        "bom": b"\xef\xbb\xbf" + exact + b"\n",
        "cr": SAMPLE.read_bytes().splitlines(keepends=True)[1] + exact + b"\r",
        "oversize-first": exact + b"xx\n" + json.dumps(second).encode() + b"\n",
    }
    for name, data in cases.items():
        events = tmp_path / f"{name}.jsonl"
        events.write_bytes(data)
        result = runner.invoke(app, ["replay", str(events), "-o", str(tmp_path / "o")])
        if name == "oversize-first":
            assert "line 1: too_large: message is" in result.stderr, result.stderr
        else:
            assert "rejected: 0" in result.stderr, (name, result.stderr)


def test_report_and_backtest_read_events_from_a_pipe(tmp_path: Path) -> None:
    for command in (
        ["report", "/dev/stdin", "-o", str(tmp_path / "r.html")],
        [
            "backtest",
            "/dev/stdin",
            "--rules-a",
            str(ROOT / "rules"),
            "--rules-b",
            str(ROOT / "rules"),
        ],
    ):
        done = subprocess.run([*CLI, *command], input=SAMPLE.read_bytes(), capture_output=True)
        assert done.returncode == 0, (command, done.stderr)  # stdin is a pipe here
        assert b"no such file" not in done.stderr


def test_failed_writes_name_what_could_not_be_written(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    for command, named in (
        (
            ["replay", str(SAMPLE), "-q", "-o", str(tmp_path / "f"), "--metrics", "/dev/full"],
            "/dev/full",
        ),
        (["report", str(SAMPLE), "-o", "/dev/full"], "/dev/full"),
        (
            ["report", str(SAMPLE), "-o", str(tmp_path / "r.html"), "--json", "/dev/full"],
            "/dev/full",
        ),
    ):
        done = subprocess.run([*CLI, *command], capture_output=True, text=True)
        assert done.returncode == 2, (command, done.stderr)
        assert f"cannot write {named}" in done.stderr
        assert "Traceback" not in done.stderr
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [
                *CLI,
                "backtest",
                str(SAMPLE),
                "--rules-a",
                str(ROOT / "rules"),
                "--rules-b",
                str(ROOT / "rules"),
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert done.returncode == 2
    assert "cannot write standard output" in done.stderr and "Traceback" not in done.stderr


def test_the_shipped_example_report_was_made_with_the_shipped_rules() -> None:
    """The example report is regenerated by hand (20,000 simulated incidents); a rules
    change left it naming rules that no longer exist."""
    from cdi_stream.rules.loader import content_hash

    shipped = json.loads((ROOT / "examples" / "report.json").read_text())
    assert shipped["rules"]["content_hash"] == content_hash(ROOT / "rules")
