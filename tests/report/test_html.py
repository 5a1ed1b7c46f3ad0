"""The HTML page is self-contained and says what every figure means; the JSON is the
same figures and validates against the model."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import escape
from pathlib import Path

import pytest

from cdi_stream.contract import DdmDecision
from cdi_stream.report import STATEMENT, Report, build_report, render_html
from cdi_stream.report.model import REPORT_SCHEMA
from cdi_stream.rules.book import RuleBook
from cdi_stream.simulate import SimConfig, write_jsonl


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, book: RuleBook) -> Report:
    """A small stream with decisions on a few flags, so every section has content."""
    tmp = tmp_path_factory.mktemp("html")
    events = tmp / "events.jsonl"
    write_jsonl(SimConfig(seed=21, incidents=1500), events)
    first = build_report(events, book=book)
    decisions = tmp / "decisions.jsonl"
    flagged = sorted({r.finding for r in first.flags.rows} - {"deadline_warning", "late_recording"})
    assert flagged
    _write_decisions(decisions, events, book, flagged)
    return build_report(events, book=book, decisions_path=decisions, yearly_volume=80_000)


def _write_decisions(path: Path, events: Path, book: RuleBook, findings: list[str]) -> None:
    from cdi_stream.report.collect import collect

    gathered = collect(events, book=book)
    lines = []
    for i, flag in enumerate(sorted(gathered.flags.values(), key=lambda f: f.flag_id)):
        if flag.finding not in findings or flag.status != "open" or i % 3:
            continue
        lines.append(
            DdmDecision(
                decision_id=f"D-{i}",
                flag_id=flag.flag_id,
                incident_id=flag.incident_id,
                decision="upheld" if i % 2 else "rejected",
                reason="reviewed",
                decided_at=dt.datetime.fromtimestamp(flag.first_seen + 3600 * (1 + i % 5), dt.UTC),
                ddm_ref="DDM-7",
            ).model_dump_json()
        )
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return render_html(report)


def test_the_page_needs_no_network_and_no_script(page: str) -> None:
    assert page.startswith("<!doctype html>")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"(src|href)\s*=", page, re.IGNORECASE)
    for needle in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        assert needle not in page.lower(), needle


def test_the_page_has_charts(page: str) -> None:
    assert page.count("<svg") >= 4
    assert page.count("<svg") == page.count("</svg>")


def test_the_estimate_statement_comes_before_any_figure(page: str, report: Report) -> None:
    statement = page.index(escape(STATEMENT, quote=False))
    assert statement < page.index("<section")
    assert "not an inspection grade" in report.statement


def test_every_figure_says_how_it_was_computed_and_names_its_edition(
    page: str, report: Report
) -> None:
    for figure in report.figures():
        assert escape(figure.method, quote=False) in page, figure.title
        assert escape(figure.title, quote=False) in page
        assert figure.editions, figure.title
    assert page.count("How this is computed.") == len(report.figures())
    assert page.count("Rules edition applied: 2023-05") == len(report.figures())
    assert report.rules.content_hash in page


def test_every_section_has_its_numbers(page: str, report: Report) -> None:
    assert report.decisions.supplied and report.decisions.rows
    assert report.unrecorded.estimate is not None
    assert f"{report.recording_rate.overall.denominator:,}" in page
    assert f"{report.cancellations.checked:,} cancellations checked" in page
    for row in report.decisions.rows:
        assert row.rule_id in page


def test_the_json_validates_against_the_model_and_round_trips(report: Report) -> None:
    text = report.to_json()
    data = json.loads(text)
    assert data["schema"] == REPORT_SCHEMA
    assert Report.model_validate_json(text) == report
    schema = Report.model_json_schema(by_alias=True)
    assert set(schema["required"]) <= set(data)
    for key in (
        "recording_rate",
        "unrecorded",
        "timeliness",
        "flags",
        "cancellations",
        "decisions",
        "trend",
    ):
        assert data[key]["method"] and data[key]["editions"]


def test_the_json_refuses_unknown_fields(report: Report) -> None:
    data = json.loads(report.to_json())
    data["surprise"] = 1
    with pytest.raises(ValueError):
        Report.model_validate(data)


def test_text_from_the_inputs_is_escaped(report: Report) -> None:
    odd = report.model_copy(
        update={"inputs": report.inputs.model_copy(update={"events_file": "<b>x</b>.jsonl"})}
    )
    page = render_html(odd)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;.jsonl" in page


def test_an_empty_events_file_still_gives_a_readable_report(tmp_path: Path, book: RuleBook) -> None:
    events = tmp_path / "empty.jsonl"
    events.write_text("not json\n")
    errors: list[str] = []
    empty = build_report(
        events,
        book=book,
        period_start=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
        period_end=dt.datetime(2026, 1, 12, tzinfo=dt.UTC),
        on_error=lambda e: errors.append(str(e)),
    )
    assert len(errors) == 1 and empty.inputs.rejected == 1
    assert empty.recording_rate.overall.value is None
    assert empty.recording_rate.editions == ["2023-05"]
    page = render_html(empty)
    assert "no crimes owed" in page and "No flags" in page
    assert [w.week for w in empty.trend.weeks] == ["2026-W02"]
