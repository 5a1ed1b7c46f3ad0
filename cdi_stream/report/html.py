"""The report as one self-contained HTML page.

Everything is inline (styles and SVG charts, no script, no font or image fetched), so
the file can be mailed, archived or opened on a machine with no network, and shows the
same thing in ten years. Each figure is followed by the text saying how it was computed
and which rules edition it applied; the statement that this is an estimate, not an
inspection grade, comes before any number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Final
from zoneinfo import ZoneInfo

from cdi_stream.report import svg
from cdi_stream.report.model import (
    CancellationChecks,
    CategoryTimeliness,
    Decisions,
    Figure,
    FlagCounts,
    Proportion,
    RecordingRate,
    Report,
    Timeliness,
    UnrecordedEstimate,
    WeeklyTrend,
)

FINDING_LABELS: Final = {
    "deadline_warning": "Deadline warning",
    "crime_not_recorded": "Crime not recorded",
    "late_recording": "Late recording",
    "additional_crime_not_recorded": "Additional crime not recorded",
    "wrong_classification": "Wrong classification",
    "unexplained_downgrade": "Unexplained downgrade",
    "incorrect_cancellation": "Incorrect cancellation",
    "rape_not_resolved": "Rape not resolved",
    "cri_without_rationale": "CRI without rationale",
}
PROBLEM_LABELS: Final = {
    "invalid_reason": "Reason not one of C1-C5",
    "c2_without_avi": "C2 without additional verifiable information",
    "unauthorised": "Violence, sexual or robbery crime not cancelled by a DDM or the FCR",
    "victim_not_informed": "Victim not informed",
}

_CSS: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1b1f24;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 960px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #5b6470; margin: 0 0 16px; }
.statement { border-left: 5px solid #b85a00; background: #fff6ec; padding: 12px 16px;
  margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
  gap: 12px; margin: 0 0 20px; }
.card { background: #fff; border: 1px solid #dfe3e8; border-radius: 6px; padding: 12px 14px; }
.card .big { font-size: 28px; font-weight: 650; }
.card .small { color: #5b6470; font-size: 13px; }
section { background: #fff; border: 1px solid #dfe3e8; border-radius: 6px;
  padding: 18px 20px; margin: 0 0 18px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e6e9ed; }
th { font-weight: 600; background: #f7f8fa; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.method { background: #f7f8fa; border-radius: 4px; padding: 10px 12px; margin: 12px 0 0;
  font-size: 13.5px; color: #333a42; }
.edition { font-size: 13px; color: #5b6470; margin: 6px 0 0; }
.none { color: #5b6470; font-style: italic; }
footer { color: #5b6470; font-size: 13px; }
@media print { body { background: #fff; } section { break-inside: avoid; } }
"""


def render_html(report: Report) -> str:
    """The whole page as one string."""
    zone = ZoneInfo(report.timezone)
    body = [
        _header(report, zone),
        _cards(report),
        _recording(report.recording_rate, report),
        _unrecorded(report.unrecorded, report),
        _timeliness(report.timeliness, report),
        _flags(report.flags, report),
        _cancellations(report.cancellations, report),
        _decisions(report.decisions, report),
        _trend(report.trend, report),
        _footer(report),
    ]
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_t(report.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


# --- pieces ----------------------------------------------------------------------------


def _t(text: str) -> str:
    return escape(text, quote=False)


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(p: Proportion) -> str:
    return "-" if p.value is None else f"{100 * p.value:.1f}%"


def _ci(p: Proportion) -> str:
    if p.ci95 is None:
        return "-"
    return f"{100 * p.ci95.low:.1f}-{100 * p.ci95.high:.1f}%"


def _when(moment: dt.datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%d %b %Y %H:%M %Z")


def _method(figure: Figure, report: Report) -> str:
    titles = {e.id: e.title for e in report.rules.editions}
    named = ", ".join(f"{e} ({titles[e]})" if e in titles else e for e in figure.editions)
    return (
        f'<p class="method"><strong>How this is computed.</strong> {_t(figure.method)}</p>'
        f'<p class="edition">Rules edition applied: {_t(named or "none")}; rules content '
        f"hash {_t(report.rules.content_hash)}.</p>"
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    """A table; cells are already escaped. Columns from ``numeric_from`` align right."""

    def cls(i: int) -> str:
        return ' class="n"' if i >= numeric_from else ""

    out = ["<table><thead><tr>"]
    out += [f"<th{cls(i)}>{h}</th>" for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _header(report: Report, zone: ZoneInfo) -> str:
    editions = ", ".join(f"{e.id} ({e.title})" for e in report.rules.editions) or "none"
    return (
        f"<header><h1>{_t(report.title)}</h1>"
        f'<p class="meta">Incidents reported from {_when(report.period_start, zone)} to '
        f"{_when(report.period_end, zone)} (end excluded); counted as at "
        f"{_when(report.evaluated_at, zone)}. Rules edition: {_t(editions)}; rules "
        f"content hash {_t(report.rules.content_hash)}.</p>{_incomplete(report, zone)}"
        f'<div class="statement" role="note"><strong>An estimate, not an inspection grade.'
        f"</strong> {_t(report.statement)}</div></header>"
    )


def _incomplete(report: Report, zone: ZoneInfo) -> str:
    if report.complete:
        return ""
    pending = report.recording_rate.pending
    return (
        '<p class="statement" role="note"><strong>Not final.</strong> The events end '
        f"before every deadline of the period has passed ({_when(report.complete_at, zone)})"
        f": {_n(pending)} crimes not yet due and not yet recorded are left out of the "
        "rates. Count again on a later extract, or give the time the file was extracted "
        "(<code>--as-of</code>) if nothing happened after its last event.</p>"
    )


def _cards(report: Report) -> str:
    rate = report.recording_rate.overall
    timely = report.timeliness.overall.within_24h
    est = report.unrecorded
    cards = [
        ("Crime recording rate", _pct(rate), f"95% CI {_ci(rate)}; {_n(rate.denominator)} owed"),
        (
            report.timeliness.title,
            _pct(timely),
            f"95% CI {_ci(timely)}; of {_n(timely.denominator)} recorded",
        ),
    ]
    if est.estimate is not None:
        cards.append(
            (
                "Unrecorded crimes a year (about)",
                _about(est.estimate),
                f"range {_about(est.low)} to {_about(est.high)}",
            )
        )
    cards.append(
        (
            "Open flags",
            _n(report.flags.open),
            f"{_n(report.flags.resolved)} resolved, {_n(report.flags.withdrawn)} withdrawn",
        )
    )
    inner = "".join(
        f'<div class="card"><div class="small">{_t(a)}</div><div class="big">{_t(b)}</div>'
        f'<div class="small">{_t(c)}</div></div>'
        for a, b, c in cards
    )
    return f'<div class="cards">{inner}</div>'


def _about(value: int | None) -> str:
    """Rounded to the nearest hundred, as published estimates are."""
    if value is None:
        return "-"
    return _n(round(value, -2)) if value >= 1000 else _n(value)


def _recording(fig: RecordingRate, report: Report) -> str:
    rows = [("All crimes", fig.overall), *((c.label, c.rate) for c in fig.by_category)]
    chart = svg.rate_bars(
        [
            svg.RateBar(
                label,
                p.value,
                None if p.ci95 is None else p.ci95.low,
                None if p.ci95 is None else p.ci95.high,
                f"({_ci(p)}) n={_n(p.denominator)}",
            )
            for label, p in rows
        ],
        title="Crime recording rate by category, with 95% confidence intervals",
        desc="; ".join(f"{label}: {_pct(p)} ({_ci(p)})" for label, p in rows),
    )
    table = _table(
        ["Category", "Owed", "Correctly recorded", "Rate", "95% CI"],
        [[_t(label), _n(p.denominator), _n(p.numerator), _pct(p), _ci(p)] for label, p in rows],
    )
    accounted = _table(
        ["Subject", "Count"],
        [
            ["Owed but not covered by a standing record", _n(fig.not_recorded)],
            ["Owed, covered, but under the wrong class", _n(fig.wrong_class)],
            ["Owed, covered, but a crime owed in addition is missing", _n(fig.incomplete)],
            ["Not counted: contrary evidence only (not recordable)", _n(fig.not_recordable)],
            ["Not counted: deadline not yet passed and not recorded", _n(fig.pending)],
            ["Not counted: obligation ended by a closure", _n(fig.discharged)],
            ["Not counted: every record cancelled on valid grounds", _n(fig.validly_cancelled)],
        ],
    )
    return (
        f'<section id="recording-rate"><h2>{_t(fig.title)}</h2>{chart}{table}'
        f"<h3>Where the shortfall is, and what is not counted</h3>{accounted}"
        f"{_method(fig, report)}</section>"
    )


def _unrecorded(fig: UnrecordedEstimate, report: Report) -> str:
    if fig.estimate is None:
        text = '<p class="none">No estimate: see how this is computed.</p>'
    else:
        assert fig.yearly_volume is not None and fig.rate is not None
        text = (
            f"<p>At a recording rate of {100 * fig.rate:.1f}%, a force that records "
            f"{_n(fig.yearly_volume)} crimes a year leaves about <strong>"
            f"{_about(fig.estimate)}</strong> crimes a year unrecorded (range "
            f"{_about(fig.low)} to {_about(fig.high)} over the rate's 95% interval; "
            f"unrounded {_n(fig.estimate)}).</p><p>Formula: {_t(fig.formula)}.</p>"
        )
    return (
        f'<section id="unrecorded"><h2>{_t(fig.title)}</h2>{text}{_method(fig, report)}</section>'
    )


def _timeliness(fig: Timeliness, report: Report) -> str:
    columns = [
        svg.Column(b.label, b.counts.get("all", 0), b.low_hours >= 24.0) for b in fig.histogram
    ]
    chart = svg.histogram(
        columns,
        title="Hours from clock start to first record, all crimes",
        desc="; ".join(f"{c.label}: {c.count}" for c in columns),
        deadline_label="24-hour deadline",
        y_label="subjects",
    )
    rows: list[CategoryTimeliness] = [fig.overall, *fig.by_category]
    table = _table(
        ["Category", "Recorded", "Within deadline", "Share", "95% CI", "Median h", "90th pct h"],
        [
            [
                _t(r.label),
                _n(r.within_24h.denominator),
                _n(r.within_24h.numerator),
                _pct(r.within_24h),
                _ci(r.within_24h),
                _hours(r.median_hours),
                _hours(r.p90_hours),
            ]
            for r in rows
        ],
    )
    names = ["all", *(r.category for r in fig.by_category)]
    labels = [fig.overall.label, *(r.label for r in fig.by_category)]
    bins = _table(
        ["Hours", *(_t(x) for x in labels)],
        [[_t(b.label), *(_n(b.counts.get(k, 0)) for k in names)] for b in fig.histogram],
    )
    return (
        f'<section id="timeliness"><h2>{_t(fig.title)}</h2>{table}{chart}'
        f"<details><summary>Distribution by category (subjects per bin)</summary>{bins}"
        f"</details>{_method(fig, report)}</section>"
    )


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _flags(fig: FlagCounts, report: Report) -> str:
    findings: dict[str, list[int]] = {}
    for r in fig.rows:
        counts = findings.setdefault(r.finding, [0, 0, 0])
        counts[0] += r.open
        counts[1] += r.resolved
        counts[2] += r.withdrawn
    if findings:
        chart = svg.stacked_bars(
            [(FINDING_LABELS.get(f, f), c) for f, c in findings.items()],
            parts=[("open", svg.RED), ("resolved", svg.GREEN), ("withdrawn", svg.GREY)],
            title="Flags by finding and status",
            desc="; ".join(
                f"{FINDING_LABELS.get(f, f)}: {c[0]} open, {c[1]} resolved, {c[2]} withdrawn"
                for f, c in findings.items()
            ),
        )
        table = _flag_table(fig)
    else:
        chart, table = "", '<p class="none">No flags on the period\'s incidents.</p>'
    extra = (
        f"<p>{_n(fig.outside_period)} further flags concern incidents not reported in the "
        "period and are not counted.</p>"
        if fig.outside_period
        else ""
    )
    return (
        f'<section id="flags"><h2>{_t(fig.title)}</h2><p>{_n(fig.open)} open, '
        f"{_n(fig.resolved)} resolved, {_n(fig.withdrawn)} withdrawn.</p>{chart}{table}"
        f"{extra}{_method(fig, report)}</section>"
    )


def _flag_table(fig: FlagCounts) -> str:
    """Findings by row; open and resolved flags by priority, withdrawn and total."""
    cells: dict[str, dict[str, int]] = {}
    for r in fig.rows:
        row = cells.setdefault(r.finding, {})
        row[f"{r.priority} open"] = row.get(f"{r.priority} open", 0) + r.open
        row[f"{r.priority} resolved"] = row.get(f"{r.priority} resolved", 0) + r.resolved
        row["withdrawn"] = row.get("withdrawn", 0) + r.withdrawn
        row["total"] = row.get("total", 0) + r.open + r.resolved + r.withdrawn
    columns = [f"{p} {s}" for p in ("P1", "P2", "P3") for s in ("open", "resolved")]
    columns += ["withdrawn", "total"]
    return _table(
        ["Finding", *(c.replace(" ", "<br>") for c in columns)],
        [
            [_t(FINDING_LABELS.get(f, f)), *(_n(row.get(c, 0)) for c in columns)]
            for f, row in cells.items()
        ],
    )


def _cancellations(fig: CancellationChecks, report: Report) -> str:
    table = _table(
        ["Problem", "Cancellations"],
        [[_t(PROBLEM_LABELS.get(k, k)), _n(v)] for k, v in fig.by_problem.items()],
    )
    p = fig.share_incorrect
    return (
        f'<section id="cancellations"><h2>{_t(fig.title)}</h2><p>{_n(fig.checked)} '
        f"cancellations checked; <strong>{_n(fig.incorrect)}</strong> found incorrect "
        f"({_pct(p)}, 95% CI {_ci(p)}).</p>{table}{_method(fig, report)}</section>"
    )


def _decisions(fig: Decisions, report: Report) -> str:
    if not fig.supplied:
        body = '<p class="none">No DDM decisions were supplied.</p>'
    else:
        body = (
            f"<p>{_n(fig.decisions)} flags decided; {_n(fig.unmatched)} decisions did not "
            "match a flag of the period.</p>"
            + _table(
                [
                    "Rule",
                    "Finding",
                    "Flags",
                    "Upheld",
                    "Rejected",
                    "Precision",
                    "95% CI",
                    "Median h to decision",
                ],
                [
                    [
                        _t(r.rule_id),
                        _t(FINDING_LABELS.get(r.finding, r.finding)),
                        _n(r.flags),
                        _n(r.upheld),
                        _n(r.rejected),
                        _pct(r.precision),
                        _ci(r.precision),
                        _hours(r.median_hours_to_decision),
                    ]
                    for r in fig.rows
                ],
                numeric_from=2,
            )
        )
    return f'<section id="decisions"><h2>{_t(fig.title)}</h2>{body}{_method(fig, report)}</section>'


def _trend(fig: WeeklyTrend, report: Report) -> str:
    weeks = fig.weeks
    rate = [w.recording_rate for w in weeks]
    timely = [w.within_24h for w in weeks]
    chart = svg.weekly_lines(
        [w.starts.strftime("%d %b") for w in weeks],
        [
            svg.Series(
                "Recording rate (band: 95% CI)",
                svg.BLUE,
                [p.value for p in rate],
                [None if p.ci95 is None else p.ci95.low for p in rate],
                [None if p.ci95 is None else p.ci95.high for p in rate],
            ),
            svg.Series(report.timeliness.title, svg.ORANGE, [p.value for p in timely]),
        ],
        title="Recording rate and timeliness by week",
        desc="; ".join(
            f"week of {w.starts}: rate {_pct(w.recording_rate)}, within 24 h {_pct(w.within_24h)}"
            for w in weeks
        ),
    )
    table = _table(
        ["ISO week", "Starts", "Owed", "Rate", "95% CI", "Within 24 h"],
        [
            [
                _t(w.week + (" (partial)" if w.partial else "")),
                w.starts.isoformat(),
                _n(w.owed),
                _pct(w.recording_rate),
                _ci(w.recording_rate),
                _pct(w.within_24h),
            ]
            for w in weeks
        ],
        numeric_from=2,
    )
    return (
        f'<section id="trend"><h2>{_t(fig.title)}</h2>{chart}{table}{_method(fig, report)}'
        "</section>"
    )


def _footer(report: Report) -> str:
    i = report.inputs
    sources = [f"events {_t(i.events_file)}"]
    if i.flags_file:
        sources.append(f"flags {_t(i.flags_file)}")
    if i.decisions_file:
        sources.append(f"decisions {_t(i.decisions_file)}")
    return (
        f"<footer><p>Inputs: {'; '.join(sources)}. {_n(i.lines)} lines, {_n(i.events)} "
        f"events applied, {_n(i.rejected)} rejected, {_n(i.duplicates)} duplicates, "
        f"of the events applied, {_n(i.outside_period)} concern incidents reported outside "
        "the period. "
        f"{_unread(i.flag_lines_rejected, 'flag file')}"
        f"{_unread(i.decision_lines_rejected, 'decisions file')}"
        f"{_n(i.incidents)} incidents reported in the period, with {_n(i.subjects)} "
        f"recordable subjects.</p><p>Report format {_t(report.schema_name)}.</p></footer>"
    )


def _unread(count: int, what: str) -> str:
    return f"{_n(count)} lines of the {what} could not be read. " if count else ""
