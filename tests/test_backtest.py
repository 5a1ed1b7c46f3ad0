"""Backtests: a deliberately changed rule must produce exactly the diff it should.

Each expected diff is worked out without the backtest's own comparison: by reasoning on
small hand-built incidents, from the simulator's record of which defect it planted
where, and from the flags each rule set produces when replayed on its own.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from cdi_stream.backtest import (
    BacktestResult,
    DiffCounts,
    FieldChange,
    FlagExample,
    FlagGroup,
    GroupCounts,
    RuleChanges,
    backtest_command,
    render_html,
    render_text,
    run_backtest,
)
from cdi_stream.cli import app
from cdi_stream.contract import FlagChange
from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.errors import RuleValidationError
from cdi_stream.simulate import DefectRates, SimConfig, Truth, write_jsonl
from tests.engine.scenario import T0, Incident, run

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "rules"
CANCEL_VICTIM_BRANCH = '    - victim_informed: "no"\n'


# --- helpers ------------------------------------------------------------------------------


def edited_rules(tmp_path: Path, name: str, edits: Iterable[tuple[str, str, str]]) -> Path:
    """A copy of the shipped rules with each (file, old, new) replaced exactly once."""
    target = tmp_path / name
    shutil.copytree(RULES_DIR, target)
    for file, old, new in edits:
        path = target / file
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} is not in {file} exactly once"
        path.write_text(text.replace(old, new))
    return target


def write_events(path: Path, incidents: Iterable[Incident]) -> list[dict[str, Any]]:
    """The incidents' events in time order, written as JSONL; returns them."""
    events = sorted((e for i in incidents for e in i.events), key=lambda e: e["occurred_at"])
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return events


def final_by_engine(
    rules: Path, events: list[dict[str, Any]], until_hours: float
) -> dict[str, FlagChange]:
    """The latest revision of every flag, from the engine driven directly."""
    with RuleBook.from_directory(rules) as book:
        return run(book, events, until=until_hours).latest


def final_by_replay(rules: Path, events: Path) -> dict[str, FlagChange]:
    """The latest revision of every flag, from an ordinary replay of the file."""
    out = io.BytesIO()
    with RuleBook.from_directory(rules) as book, events.open("rb") as lines:
        replay(lines, book, out=out)
    latest: dict[str, FlagChange] = {}
    for line in out.getvalue().splitlines():
        change = FlagChange.model_validate_json(line)
        latest[change.flag_id] = change
    return latest


def counted(flags: dict[str, FlagChange]) -> dict[str, FlagChange]:
    """What a DDM queue and the figures see: open flags and late recordings."""
    return {
        k: f
        for k, f in flags.items()
        if f.status == "open" or (f.finding == "late_recording" and f.status != "withdrawn")
    }


def example_of(flag: FlagChange, **changes: FieldChange) -> FlagExample:
    return FlagExample(
        incident_id=flag.incident_id,
        flag_id=flag.flag_id,
        victim_ref=flag.victim_ref,
        status=flag.status,
        priority=flag.priority,
        changes=changes,
    )


def simulated(
    tmp_path: Path, *, seed: int, incidents: int, **rates: float
) -> tuple[Path, list[Truth]]:
    path = tmp_path / f"sim-{seed}.jsonl"
    truths = write_jsonl(
        SimConfig(seed=seed, incidents=incidents, defects=DefectRates(**rates)), path
    )
    return path, truths


def text_of(result: BacktestResult) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(render_text(result))
    return console.export_text()


# --- identical rule sets ------------------------------------------------------------------


def test_identical_rule_sets_give_an_empty_diff(tmp_path: Path) -> None:
    events, _ = simulated(tmp_path, seed=11, incidents=400)
    same = edited_rules(tmp_path, "same", [])
    result = run_backtest(events, RULES_DIR, same)

    assert result.identical
    assert result.added == result.removed == result.changed == []
    assert result.rules == RuleChanges()
    assert result.a.content_hash == result.b.content_hash
    assert result.a.counted > 0
    assert result.totals == DiffCounts(unchanged=result.a.counted)
    assert result.all_flags.totals == DiffCounts(unchanged=result.a.flags)
    assert result.all_flags.by_rule == []
    assert result.a.model_dump(exclude={"rules_dir"}) == result.b.model_dump(exclude={"rules_dir"})
    assert "no difference" in text_of(result)


# --- CANCEL no longer flags an uninformed victim -------------------------------------------


def cancellations() -> list[Incident]:
    """One crime each, recorded in time and cancelled on day two, flawed differently."""

    def cancelled(incident_id: str, reason: str, informed: bool | None) -> Incident:
        incident = Incident(incident_id).reported(0).crime(1).closed(2)
        return incident.cancelled(30, reason, informed=informed)

    return [
        cancelled("INC-C1", "C3", False),  # only flaw: the victim was not informed
        cancelled("INC-C2", "C9", False),  # invalid reason as well
        cancelled("INC-C3", "C3", True),  # no flaw
        cancelled("INC-C4", "C2", None),  # C2 without AVI; not known whether informed
    ]


def test_cancel_change_on_hand_built_incidents_removes_exactly_one_flag(tmp_path: Path) -> None:
    events = write_events(tmp_path / "events.jsonl", cancellations())
    rules_b = edited_rules(tmp_path, "b", [("cancellation.yaml", CANCEL_VICTIM_BRANCH, "")])
    until = T0 + dt.timedelta(hours=48)
    result = run_backtest(tmp_path / "events.jsonl", RULES_DIR, rules_b, until=until)

    final_a = final_by_engine(RULES_DIR, events, 48)
    final_b = final_by_engine(rules_b, events, 48)
    cancel_a = {f.incident_id: f for f in final_a.values() if f.rule_id == "CANCEL"}
    cancel_b = {f.incident_id: f for f in final_b.values() if f.rule_id == "CANCEL"}
    # The reasoning, checked on each rule set alone: C1 loses its only flaw.
    assert sorted(cancel_a) == ["INC-C1", "INC-C2", "INC-C4"]
    assert sorted(cancel_b) == ["INC-C2", "INC-C4"]
    assert {f.status for f in cancel_a.values()} == {"open"}
    assert {k: v for k, v in final_a.items() if v.incident_id != "INC-C1"} == final_b

    gone = cancel_a["INC-C1"]
    assert result.removed == [
        FlagGroup(
            rule_id="CANCEL",
            finding="incorrect_cancellation",
            flags=1,
            incidents=1,
            examples=[example_of(gone)],
        )
    ]
    assert result.added == result.changed == []
    unchanged = len(counted(final_a)) - 1
    assert result.totals == DiffCounts(removed=1, unchanged=unchanged)
    assert result.all_flags.totals == DiffCounts(removed=1, unchanged=len(final_a) - 1)
    assert result.all_flags.by_rule == [
        GroupCounts(rule_id="CANCEL", finding="incorrect_cancellation", removed=1)
    ]
    assert result.rules == RuleChanges(changed=["CANCEL"])
    assert result.a.content_hash != result.b.content_hash
    assert not result.identical


def test_cancel_change_on_a_simulated_stream_matches_the_planted_defects(
    tmp_path: Path,
) -> None:
    events, truths = simulated(tmp_path, seed=5, incidents=600, wrongly_cancelled=0.3)
    rules_b = edited_rules(tmp_path, "b", [("cancellation.yaml", CANCEL_VICTIM_BRANCH, "")])
    result = run_backtest(events, RULES_DIR, rules_b)

    # The simulator plants one flaw per wrong cancellation and says which.
    planted = sorted(t.incident_id for t in truths if t.defect_detail == "victim_not_informed")
    assert len(planted) > 5
    # The same set, read from what rule set A says about each cancellation.
    final_a = final_by_replay(RULES_DIR, events)
    only_flaw = re.compile(r"on the authority of \w+: (.*); reinstate the crime")
    uninformed_only = {
        f.flag_id: f
        for f in counted(final_a).values()
        if f.rule_id == "CANCEL"
        and (m := only_flaw.search(f.explanation)) is not None
        and m.group(1) == "the victim was not informed"
    }
    assert sorted(f.incident_id for f in uninformed_only.values()) == planted

    assert result.added == result.changed == []
    [group] = result.removed
    assert (group.rule_id, group.finding) == ("CANCEL", "incorrect_cancellation")
    assert (group.flags, group.incidents) == (len(planted), len(planted))
    first = sorted(uninformed_only.values(), key=lambda f: f.incident_id)[:5]
    assert group.examples == [example_of(f) for f in first]
    assert result.totals.removed == len(planted)
    assert result.all_flags.totals.removed == len(planted)
    assert result.all_flags.totals.added == result.all_flags.totals.changed == 0


# --- a priority floor raised --------------------------------------------------------------


def test_raised_priority_floor_changes_exactly_the_lower_priority_flags(tmp_path: Path) -> None:
    events, _ = simulated(tmp_path, seed=3, incidents=600)
    rules_b = edited_rules(tmp_path, "b", [("closure.yaml", "priority: P3", "priority: P1")])
    result = run_backtest(events, RULES_DIR, rules_b, examples=2)

    final_a = final_by_replay(RULES_DIR, events)
    final_b = final_by_replay(rules_b, events)
    cri = {k: f for k, f in final_a.items() if f.rule_id == "CRI-RATIONALE"}
    lower = {k: f for k, f in cri.items() if f.priority != "P1"}
    lower_open = {k: f for k, f in lower.items() if f.status == "open"}
    assert len(lower_open) > 2
    # Independently of the backtest: B is A with those priorities raised, nothing else.
    assert final_b == {
        k: (f.model_copy(update={"priority": "P1"}) if k in lower else f)
        for k, f in final_a.items()
    }

    assert result.added == result.removed == []
    [group] = result.changed
    assert (group.rule_id, group.finding) == ("CRI-RATIONALE", "cri_without_rationale")
    assert group.flags == len(lower_open)
    assert group.incidents == len({f.incident_id for f in lower_open.values()})
    assert group.fields == {"priority": len(lower_open)}
    first = sorted(lower_open.values(), key=lambda f: (f.incident_id, f.flag_id))[:2]
    assert group.examples == [
        example_of(final_b[f.flag_id], priority=FieldChange(a=f.priority, b="P1")) for f in first
    ]
    assert result.totals.changed == len(lower_open)
    assert result.all_flags.totals.changed == len(lower)
    assert result.all_flags.by_rule == [
        GroupCounts(rule_id="CRI-RATIONALE", finding="cri_without_rationale", changed=len(lower))
    ]
    assert result.rules == RuleChanges(changed=["CRI-RATIONALE"])
    report = text_of(result)
    assert "Changed (in both, different)" in report
    assert "priority: P3 -> P1" in report


# --- the warning phase narrowed -----------------------------------------------------------


def test_warning_only_at_20_hours_removes_the_12_hour_warnings(tmp_path: Path) -> None:
    incidents = [
        Incident("INC-W1").reported(0),  # 15 h at the end: warned at 12 h under A only
        Incident("INC-W2").reported(0).crime(14),  # warned, then recorded: history only
        Incident("INC-W3", start=T0 - dt.timedelta(hours=8)).reported(0),  # 23 h: both warn
        Incident("INC-W4").reported(0).crime(2),  # recorded in time: never warned
    ]
    events = write_events(tmp_path / "events.jsonl", incidents)
    rules_b = edited_rules(
        tmp_path,
        "b",
        [("deadlines.yaml", "phase: {in: [warn_12, warn_20]}", "phase: {in: [warn_20]}")],
    )
    result = run_backtest(
        tmp_path / "events.jsonl", RULES_DIR, rules_b, until=T0 + dt.timedelta(hours=15)
    )

    final_a = final_by_engine(RULES_DIR, events, 15)
    final_b = final_by_engine(rules_b, events, 15)
    warnings_a = {f.incident_id: f for f in final_a.values() if f.rule_id == "NCRS-24H-WARN"}
    warnings_b = {f.incident_id: f for f in final_b.values() if f.rule_id == "NCRS-24H-WARN"}
    assert {k: f.status for k, f in warnings_a.items()} == {
        "INC-W1": "open",
        "INC-W2": "resolved",
        "INC-W3": "open",
    }
    assert {k: f.status for k, f in warnings_b.items()} == {"INC-W3": "open"}
    # Same final state; only the history (A's revision 1 at 12 h) differs.
    assert warnings_a["INC-W3"].revision == 2
    assert warnings_b["INC-W3"].revision == 1
    assert warnings_a["INC-W3"].model_dump(exclude={"revision"}) == warnings_b["INC-W3"].model_dump(
        exclude={"revision"}
    )

    assert result.removed == [
        FlagGroup(
            rule_id="NCRS-24H-WARN",
            finding="deadline_warning",
            flags=1,
            incidents=1,
            examples=[example_of(warnings_a["INC-W1"])],
        )
    ]
    assert result.added == result.changed == []
    assert result.totals == DiffCounts(removed=1, unchanged=len(counted(final_a)) - 1)
    assert result.all_flags.totals == DiffCounts(removed=2, unchanged=len(final_a) - 2)
    assert result.until == "2026-01-05T23:00:00+00:00"


def test_a_late_recording_counts_in_the_primary_view_though_resolved(tmp_path: Path) -> None:
    events = write_events(
        tmp_path / "events.jsonl",
        [Incident("INC-L1").reported(0).crime(30), Incident("INC-L2").reported(0).crime(3)],
    )
    deadlines = (RULES_DIR / "deadlines.yaml").read_text()
    late_doc = deadlines[deadlines.index("---\nid: NCRS-24H-LATE") :]
    rules_b = edited_rules(tmp_path, "b", [("deadlines.yaml", late_doc, "")])
    result = run_backtest(
        tmp_path / "events.jsonl", RULES_DIR, rules_b, until=T0 + dt.timedelta(hours=40)
    )

    [late] = [
        f for f in final_by_engine(RULES_DIR, events, 40).values() if f.rule_id == "NCRS-24H-LATE"
    ]
    assert (late.incident_id, late.status) == ("INC-L1", "resolved")
    assert result.removed == [
        FlagGroup(
            rule_id="NCRS-24H-LATE",
            finding="late_recording",
            flags=1,
            incidents=1,
            examples=[example_of(late)],
        )
    ]
    assert result.totals.removed == 1
    assert result.rules == RuleChanges(removed=["NCRS-24H-LATE"])


# --- invalid rules ------------------------------------------------------------------------


def test_invalid_rules_are_reported_with_file_and_rule_id(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl", cancellations())
    broken_a = edited_rules(tmp_path, "a", [("cancellation.yaml", "priority: P3", "priority: P9")])
    broken_b = edited_rules(
        tmp_path,
        "b",
        [("deadlines.yaml", "phase: {in: [warn_12, warn_20]}", "phaze: {in: [warn_12]}")],
    )
    with pytest.raises(RuleValidationError) as caught:
        run_backtest(tmp_path / "events.jsonl", broken_a, broken_b)
    located = {(Path(p.file or "").name, p.rule_id) for p in caught.value.problems}
    assert ("cancellation.yaml", "CANCEL") in located
    assert ("deadlines.yaml", "NCRS-24H-WARN") in located

    out, err = io.StringIO(), io.StringIO()
    code = backtest_command(
        str(tmp_path / "events.jsonl"),
        RULES_DIR,
        broken_b,
        console=Console(file=out, width=200),
        err_console=Console(file=err, width=400),
    )
    assert code == 2
    assert f"error {broken_b / 'deadlines.yaml'}: NCRS-24H-WARN: " in err.getvalue()
    assert "phaze" in err.getvalue()
    assert out.getvalue() == ""


def test_missing_rules_directory_and_events_file_exit_2(tmp_path: Path) -> None:
    events = write_events(tmp_path / "events.jsonl", cancellations())
    assert events
    err = io.StringIO()
    code = backtest_command(
        str(tmp_path / "events.jsonl"),
        tmp_path / "nowhere",
        RULES_DIR,
        console=Console(file=io.StringIO()),
        err_console=Console(file=err, width=400),
    )
    assert code == 2
    assert f"{tmp_path / 'nowhere'}: not a directory" in err.getvalue()
    err = io.StringIO()
    code = backtest_command(
        str(tmp_path / "none.jsonl"),
        RULES_DIR,
        RULES_DIR,
        console=Console(file=io.StringIO()),
        err_console=Console(file=err, width=400),
    )
    assert code == 2
    assert "no such file" in err.getvalue()


# --- outputs ------------------------------------------------------------------------------


def test_json_and_html_outputs_are_deterministic(tmp_path: Path) -> None:
    events, _ = simulated(tmp_path, seed=5, incidents=300, wrongly_cancelled=0.3)
    rules_b = edited_rules(
        tmp_path,
        "b",
        [
            ("cancellation.yaml", CANCEL_VICTIM_BRANCH, ""),
            ("closure.yaml", "priority: P3", "priority: P2"),
        ],
    )
    written: list[tuple[bytes, bytes]] = []
    for run_no in range(2):
        json_out, html_out = tmp_path / f"r{run_no}.json", tmp_path / f"r{run_no}.html"
        out = io.StringIO()
        code = backtest_command(
            str(events),
            RULES_DIR,
            rules_b,
            json_out=json_out,
            html_out=html_out,
            console=Console(file=out, width=200),
            err_console=Console(file=io.StringIO()),
        )
        assert code == 0
        assert "Removed (in A, not in B)" in out.getvalue()
        written.append((json_out.read_bytes(), html_out.read_bytes()))
    assert written[0] == written[1]

    json_bytes, html_bytes = written[0]
    result = BacktestResult.model_validate_json(json_bytes)
    assert result.removed and result.changed
    assert result == run_backtest(events, RULES_DIR, rules_b)
    assert render_html(result).encode() == html_bytes
    page = html_bytes.decode()
    for needle in ("<script", "http://", "https://", "<link", "src="):
        assert needle not in page
    for group in (*result.removed, *result.changed):
        for example in group.examples:
            assert example.incident_id in page


def test_examples_are_capped_and_the_first_incidents(tmp_path: Path) -> None:
    events, _ = simulated(tmp_path, seed=3, incidents=600)
    rules_b = edited_rules(tmp_path, "b", [("closure.yaml", "priority: P3", "priority: P1")])
    full = run_backtest(events, RULES_DIR, rules_b, examples=1000)
    [group] = full.changed
    everyone = [e.incident_id for e in group.examples]
    assert len(everyone) == group.incidents > 3
    assert everyone == sorted(everyone)
    for cap in (0, 1, 3):
        capped = run_backtest(events, RULES_DIR, rules_b, examples=cap)
        [small] = capped.changed
        assert [e.incident_id for e in small.examples] == everyone[:cap]
        assert (small.flags, small.incidents, small.fields) == (
            group.flags,
            group.incidents,
            group.fields,
        )
        assert capped.examples_per_group == cap
    with pytest.raises(ValueError, match="examples"):
        run_backtest(events, RULES_DIR, rules_b, examples=-1)


def test_lines_from_a_stream_give_the_same_result_as_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_events(tmp_path / "events.jsonl", cancellations())
    rules_b = edited_rules(tmp_path, "b", [("cancellation.yaml", CANCEL_VICTIM_BRANCH, "")])
    path = tmp_path / "events.jsonl"
    from_file = run_backtest(path, RULES_DIR, rules_b)
    lines = [line.rstrip(b"\n") for line in path.read_bytes().splitlines()]
    assert run_backtest(iter(lines), RULES_DIR, rules_b) == from_file

    stdin = io.TextIOWrapper(io.BytesIO(path.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    report = io.StringIO()
    code = backtest_command(
        "-",
        RULES_DIR,
        rules_b,
        json_out=Path("-"),
        console=Console(file=io.StringIO()),
        err_console=Console(file=report, width=200),
    )
    assert code == 0
    assert BacktestResult.model_validate_json(stdout.getvalue()) == from_file
    assert "Removed (in A, not in B)" in report.getvalue()


def test_rejected_lines_are_counted_once_and_reported(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl", cancellations())
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"not json\n" + path.read_bytes())
    err = io.StringIO()
    code = backtest_command(
        str(path),
        RULES_DIR,
        RULES_DIR,
        json_out=tmp_path / "r.json",
        console=Console(file=io.StringIO()),
        err_console=Console(file=err, width=200),
    )
    assert code == 0
    assert err.getvalue().count("line 1: not_json") == 1
    result = BacktestResult.model_validate_json((tmp_path / "r.json").read_bytes())
    assert result.events.rejected == 1
    assert result.events.errors[0].startswith("line 1: not_json")
    assert result.identical


def test_the_command_line(tmp_path: Path) -> None:
    assert "backtest" in getattr(get_command(app), "commands", {})
    write_events(tmp_path / "events.jsonl", cancellations())
    rules_b = edited_rules(tmp_path, "b", [("cancellation.yaml", CANCEL_VICTIM_BRANCH, "")])
    args = [
        "backtest",
        str(tmp_path / "events.jsonl"),
        "--rules-a",
        str(RULES_DIR),
        "--rules-b",
        str(rules_b),
        "--until",
        "2026-01-07T08:00:00Z",
        "--examples",
        "2",
        "--json",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Removed (in A, not in B)" in result.stdout
    parsed = BacktestResult.model_validate_json((tmp_path / "r.json").read_bytes())
    assert [g.rule_id for g in parsed.removed] == ["CANCEL"]
    assert parsed.examples_per_group == 2
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    broken = edited_rules(tmp_path, "x", [("cancellation.yaml", "priority: P3", "priority: P9")])
    bad = CliRunner().invoke(app, [*args[:4], "--rules-b", str(broken)])
    assert bad.exit_code == 2
    assert "cancellation.yaml: CANCEL: priority" in bad.output
