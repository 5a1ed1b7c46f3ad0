"""Backtest: the same events replayed under two rule sets, and what changes for a DDM.

A change to a rule file is a change to which incidents reach a Dedicated Decision
Maker, so it should be judged by its effect on real (or simulated) streams before it is
deployed. A backtest replays one events file under rule set A and under rule set B, each
with its own engine and the same event-time clock, keeps each flag's latest revision, and
compares the two by ``flag_id``. Flag ids are a hash of incident, rule id and subject,
so the same flag under both rule sets has the same id and any difference is the rules'.

Choices that are not obvious from the code:

* Two views. The primary diff compares the flags that matter: those open at the end
  (the DDM queue) and late recordings (raised as resolved, but counted in every
  figure). A flag open under A and withdrawn under B has left the queue, so in this
  view it is *removed*. A secondary count compares every final flag id whatever its
  status, which also shows flags that came and went (a warning raised and resolved)
  and so differ only in history.
* *Changed* means the flag is in both and its status, finding, priority, expected or
  observed values differ. Titles, references, explanations and editions are not
  compared: they restate the rule, and a wording change is not a change in what is
  flagged or how urgently. The rule documents themselves are compared separately
  (``rules``), so a reworded rule still shows up there.
* Groups are by (rule id, finding); a changed flag is grouped by its finding under A.
  Examples are the first incidents in sorted order, one flag each, so the same inputs
  always give the same report, byte for byte, in JSON and HTML.
* Events read from a stream (standard input) are spooled to a temporary file, because
  they are read twice.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from cdi_stream.contract import DEFAULT_MAX_BYTES
from cdi_stream.engine import EngineConfig
from cdi_stream.replay import LineError, OversizeLine, ReplaySummary, bounded_lines, replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.errors import RuleProblem, RulesError, RuleValidationError
from cdi_stream.runtime import stdout_reader_gone

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "COMPARED_FIELDS",
    "AllFlagsDiff",
    "BacktestResult",
    "DiffCounts",
    "EventsSummary",
    "FieldChange",
    "FlagExample",
    "FlagGroup",
    "GroupCounts",
    "RuleChanges",
    "SideSummary",
    "backtest_command",
    "render_html",
    "render_text",
    "run_backtest",
]

COMPARED_FIELDS: Final = ("status", "finding", "priority", "expected", "observed")
"""What must agree for a flag to count as unchanged between the two rule sets."""

MAX_LISTED_ERRORS: Final = 20
_SPOOL_BYTES: Final = 64 * 1024 * 1024

Scalar = str | int | bool | None
FieldValue = str | dict[str, Scalar]


# --- the result ---------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldChange(_Model):
    """One compared field of one flag: its value under A and under B."""

    a: FieldValue
    b: FieldValue


class FlagExample(_Model):
    """One flag of an example incident; status and priority are B's, or A's if removed."""

    incident_id: str
    flag_id: str
    victim_ref: str | None = None
    status: str
    priority: str
    changes: dict[str, FieldChange] = Field(default_factory=dict)


class FlagGroup(_Model):
    """Flags of one rule and finding that were added, removed or changed."""

    rule_id: str
    finding: str
    flags: int
    incidents: int
    fields: dict[str, int] = Field(
        default_factory=dict, description="changed flags only: how many differ in each field"
    )
    examples: list[FlagExample] = Field(default_factory=list)


class DiffCounts(_Model):
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0

    @property
    def differences(self) -> int:
        return self.added + self.removed + self.changed


class GroupCounts(_Model):
    rule_id: str
    finding: str
    added: int = 0
    removed: int = 0
    changed: int = 0


class AllFlagsDiff(_Model):
    """Every final flag id compared, whatever its status: the secondary view."""

    totals: DiffCounts
    by_rule: list[GroupCounts] = Field(default_factory=list)


class RuleChanges(_Model):
    """Rule documents that differ between the two directories, by id."""

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    editions_changed: bool = False


class SideSummary(_Model):
    """One rule set and what its replay produced."""

    rules_dir: str
    content_hash: str
    editions: list[str]
    rule_ids: list[str]
    flag_changes: int
    flags: int
    by_status: dict[str, int]
    counted: int = Field(description="open flags plus late recordings: the primary view")


class EventsSummary(_Model):
    """The input, read the same way for both rule sets."""

    lines: int
    events: int
    rejected: int
    duplicates: int
    unknown_offence_codes: int
    errors: list[str] = Field(default_factory=list, description="the first rejected lines")


class BacktestResult(_Model):
    """What changes for a DDM if rule set B replaces rule set A, on the same events."""

    schema_version: Literal[1] = 1
    until: str | None
    examples_per_group: int
    events: EventsSummary
    a: SideSummary
    b: SideSummary
    rules: RuleChanges
    totals: DiffCounts
    added: list[FlagGroup] = Field(default_factory=list)
    removed: list[FlagGroup] = Field(default_factory=list)
    changed: list[FlagGroup] = Field(default_factory=list)
    all_flags: AllFlagsDiff

    @property
    def identical(self) -> bool:
        """No difference in either view."""
        return self.totals.differences == 0 and self.all_flags.totals.differences == 0


# --- running ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Flag:
    """The latest revision of one flag, reduced to what the diff reads."""

    flag_id: str
    revision: int
    incident_id: str
    victim_ref: str | None
    rule_id: str
    finding: str
    status: str
    priority: str
    expected: dict[str, Scalar]
    observed: dict[str, Scalar]

    @property
    def counted(self) -> bool:
        """In the DDM queue, or in the figures as a late recording."""
        return self.status == "open" or (
            self.finding == "late_recording" and self.status != "withdrawn"
        )

    def value(self, name: str) -> FieldValue:
        found: FieldValue = getattr(self, name)
        return found


class _FinalFlags(io.BytesIO):
    """A replay sink that keeps the latest revision of each flag instead of the bytes.

    The replay's only output is a byte stream of flag changes; reading it back here
    means the backtest judges exactly what ``cdi-stream replay`` would print, while
    holding one small record per flag rather than every change of two long replays.
    """

    def __init__(self) -> None:
        super().__init__()
        self.latest: dict[str, _Flag] = {}
        self._partial = b""

    def write(self, buffer: ReadableBuffer, /) -> int:
        data = bytes(buffer)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._keep(json.loads(line))
        return len(data)

    def _keep(self, raw: dict[str, Any]) -> None:
        flag = _Flag(
            flag_id=raw["flag_id"],
            revision=raw["revision"],
            incident_id=raw["incident_id"],
            victim_ref=raw.get("victim_ref"),
            rule_id=raw["rule_id"],
            finding=raw["finding"],
            status=raw["status"],
            priority=raw["priority"],
            expected=raw.get("expected") or {},
            observed=raw.get("observed") or {},
        )
        held = self.latest.get(flag.flag_id)
        if held is None or flag.revision >= held.revision:
            self.latest[flag.flag_id] = flag


def _load_books(rules_a: Path, rules_b: Path, stack: ExitStack) -> tuple[RuleBook, RuleBook]:
    """Both rule sets compiled, or every problem of both in one RuleValidationError.

    Both are checked before either is used, so one run reports everything to fix.
    """
    books: list[RuleBook] = []
    problems: list[RuleProblem] = []
    for directory in (rules_a, rules_b):
        try:
            books.append(stack.enter_context(RuleBook.from_directory(directory)))
        except RuleValidationError as exc:
            problems.extend(exc.problems)
        except RulesError as exc:
            problems.append(RuleProblem(str(directory), None, str(exc)))
    if problems:
        raise RuleValidationError(problems)
    return books[0], books[1]


def run_backtest(
    events: Path | Iterable[bytes],
    rules_a: Path,
    rules_b: Path,
    *,
    until: dt.datetime | None = None,
    examples: int = 5,
    config: EngineConfig | None = None,
    on_error: Callable[[LineError], None] | None = None,
) -> BacktestResult:
    """Replay ``events`` under both rule sets and compare the final flags.

    ``events`` is a JSONL file or an iterable of its lines. Raises RuleValidationError
    (with every problem of both directories) if either rule set is invalid.
    ``on_error`` hears about each rejected line once, from the first replay.
    """
    if examples < 0:
        raise ValueError(f"examples={examples} must not be negative")
    with ExitStack() as stack:
        book_a, book_b = _load_books(Path(rules_a), Path(rules_b), stack)
        open_events = stack.enter_context(_event_source(events))
        run_a = _replay(open_events(), book_a, until, config, on_error)
        run_b = _replay(open_events(), book_b, until, config, None)
        return _compare(run_a, run_b, until=until, examples=examples)


def _lines_of(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from bounded_lines(handle, DEFAULT_MAX_BYTES)


# How a line too long to keep is spooled: its size only.
_OVERSIZE = b"\x00oversize "


@contextmanager
def _event_source(events: Path | Iterable[bytes]) -> Iterator[Callable[[], Iterator[bytes]]]:
    """Something that yields the lines afresh for each replay."""
    if isinstance(events, Path):
        path = events
        yield lambda: _lines_of(path)
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b") as spool:
        for line in events:
            if isinstance(line, OversizeLine):  # kept as its size, never whole
                spool.write(_OVERSIZE + str(line.size).encode() + b"\n")
            else:
                spool.write(line if line.endswith(b"\n") else line + b"\n")

        def from_spool() -> Iterator[bytes]:
            spool.seek(0)
            for line in spool:
                if line.startswith(_OVERSIZE):
                    oversize = OversizeLine(b"")
                    oversize.size = int(line[len(_OVERSIZE) :])
                    yield oversize
                else:
                    yield line

        yield from_spool


@dataclass(frozen=True, slots=True)
class _Run:
    """One rule set's replay: the book, the replay's counts, the final flags by id."""

    book: RuleBook
    summary: ReplaySummary
    final: dict[str, _Flag]

    def counted(self) -> dict[str, _Flag]:
        return {k: f for k, f in self.final.items() if f.counted}


def _replay(
    lines: Iterator[bytes],
    book: RuleBook,
    until: dt.datetime | None,
    config: EngineConfig | None,
    on_error: Callable[[LineError], None] | None,
) -> _Run:
    sink = _FinalFlags()
    summary = replay(lines, book, out=sink, until=until, config=config, on_error=on_error)
    return _Run(book, summary, sink.latest)


# --- comparing ----------------------------------------------------------------------------


def _compare(
    run_a: _Run, run_b: _Run, *, until: dt.datetime | None, examples: int
) -> BacktestResult:
    counted_a, counted_b = run_a.counted(), run_b.counted()
    added = [counted_b[k] for k in counted_b.keys() - counted_a.keys()]
    removed = [counted_a[k] for k in counted_a.keys() - counted_b.keys()]
    changed: list[tuple[_Flag, _Flag, tuple[str, ...]]] = []
    unchanged = 0
    for key in counted_a.keys() & counted_b.keys():
        fields = _differing(counted_a[key], counted_b[key])
        if fields:
            changed.append((counted_a[key], counted_b[key], fields))
        else:
            unchanged += 1
    read = run_a.summary
    return BacktestResult(
        until=until.isoformat() if until is not None else None,
        examples_per_group=examples,
        events=EventsSummary(
            lines=read.lines,
            events=read.events,
            rejected=read.rejected,
            duplicates=read.duplicates,
            unknown_offence_codes=read.unknown_offence_codes,
            errors=[str(e) for e in read.errors[:MAX_LISTED_ERRORS]],
        ),
        a=_side(run_a, len(counted_a)),
        b=_side(run_b, len(counted_b)),
        rules=_rule_changes(run_a.book, run_b.book),
        totals=DiffCounts(
            added=len(added), removed=len(removed), changed=len(changed), unchanged=unchanged
        ),
        added=_groups([(f, None, ()) for f in added], examples),
        removed=_groups([(f, None, ()) for f in removed], examples),
        changed=_groups([(b, a, fields) for a, b, fields in changed], examples),
        all_flags=_all_flags(run_a.final, run_b.final),
    )


def _differing(a: _Flag, b: _Flag) -> tuple[str, ...]:
    return tuple(name for name in COMPARED_FIELDS if a.value(name) != b.value(name))


def _groups(
    items: list[tuple[_Flag, _Flag | None, tuple[str, ...]]], examples: int
) -> list[FlagGroup]:
    """Group flags by (rule id, finding) with the first ``examples`` incidents of each.

    Each item is (flag shown, flag under A if it changed, fields that differ); a changed
    flag is grouped by its finding under A.
    """
    by_key: dict[tuple[str, str], list[tuple[_Flag, _Flag | None, tuple[str, ...]]]] = defaultdict(
        list
    )
    for shown, before, fields in items:
        base = before or shown
        by_key[(base.rule_id, base.finding)].append((shown, before, fields))
    out: list[FlagGroup] = []
    for (rule_id, finding), members in sorted(by_key.items()):
        members.sort(key=lambda m: (m[0].incident_id, m[0].flag_id))
        field_counts: dict[str, int] = defaultdict(int)
        for _, _, fields in members:
            for name in fields:
                field_counts[name] += 1
        picked: list[FlagExample] = []
        seen: set[str] = set()
        for shown, before, fields in members:
            if len(picked) >= examples:
                break
            if shown.incident_id in seen:
                continue
            seen.add(shown.incident_id)
            picked.append(_example(shown, before, fields))
        out.append(
            FlagGroup(
                rule_id=rule_id,
                finding=finding,
                flags=len(members),
                incidents=len({m[0].incident_id for m in members}),
                fields={n: field_counts[n] for n in COMPARED_FIELDS if n in field_counts},
                examples=picked,
            )
        )
    return out


def _example(shown: _Flag, before: _Flag | None, fields: tuple[str, ...]) -> FlagExample:
    changes = (
        {n: FieldChange(a=before.value(n), b=shown.value(n)) for n in fields}
        if before is not None
        else {}
    )
    return FlagExample(
        incident_id=shown.incident_id,
        flag_id=shown.flag_id,
        victim_ref=shown.victim_ref,
        status=shown.status,
        priority=shown.priority,
        changes=changes,
    )


def _all_flags(final_a: dict[str, _Flag], final_b: dict[str, _Flag]) -> AllFlagsDiff:
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"added": 0, "removed": 0, "changed": 0}
    )
    totals = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
    for key in final_a.keys() | final_b.keys():
        a, b = final_a.get(key), final_b.get(key)
        if a is None:
            assert b is not None
            kind, base = "added", b
        elif b is None:
            kind, base = "removed", a
        elif _differing(a, b):
            kind, base = "changed", a
        else:
            totals["unchanged"] += 1
            continue
        totals[kind] += 1
        counts[(base.rule_id, base.finding)][kind] += 1
    return AllFlagsDiff(
        totals=DiffCounts(**totals),
        by_rule=[
            GroupCounts(rule_id=rule_id, finding=finding, **c)
            for (rule_id, finding), c in sorted(counts.items())
        ],
    )


def _side(run: _Run, counted: int) -> SideSummary:
    statuses: dict[str, int] = defaultdict(int)
    for flag in run.final.values():
        statuses[flag.status] += 1
    return SideSummary(
        rules_dir=str(run.book.source.directory),
        content_hash=run.book.content_hash,
        editions=[e.id for e in run.book.editions],
        rule_ids=sorted({r.doc.id for r in run.book.source.rules}),
        flag_changes=run.summary.flag_changes,
        flags=len(run.final),
        by_status=dict(sorted(statuses.items())),
        counted=counted,
    )


def _rule_changes(book_a: RuleBook, book_b: RuleBook) -> RuleChanges:
    """Rule ids whose documents differ (any field, any version), and editions."""

    def docs(book: RuleBook) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for rule in book.source.rules:
            out[rule.doc.id].append(json.dumps(rule.doc.model_dump(mode="json"), sort_keys=True))
        return {k: sorted(v) for k, v in out.items()}

    a, b = docs(book_a), docs(book_b)
    return RuleChanges(
        added=sorted(b.keys() - a.keys()),
        removed=sorted(a.keys() - b.keys()),
        changed=sorted(k for k in a.keys() & b.keys() if a[k] != b[k]),
        editions_changed=(
            book_a.source.editions.model_dump(mode="json")
            != book_b.source.editions.model_dump(mode="json")
        ),
    )


# --- rendering ----------------------------------------------------------------------------

_CATEGORIES: Final = (
    ("added", "Added (in B, not in A)"),
    ("removed", "Removed (in A, not in B)"),
    ("changed", "Changed (in both, different)"),
)


def _short(value: FieldValue) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "{}"
    return value


def _example_line(example: FlagExample) -> str:
    who = f" {example.victim_ref}" if example.victim_ref else ""
    if not example.changes:
        return f"{example.incident_id}{who} ({example.status}, {example.priority})"
    diffs = "; ".join(
        f"{name}: {_short(c.a)} -> {_short(c.b)}" for name, c in example.changes.items()
    )
    return f"{example.incident_id}{who}: {diffs}"


def _rules_line(rules: RuleChanges) -> str:
    parts = [
        f"{label}: {', '.join(ids)}"
        for label, ids in (
            ("added", rules.added),
            ("removed", rules.removed),
            ("changed", rules.changed),
        )
        if ids
    ]
    if rules.editions_changed:
        parts.append("editions file changed")
    return "; ".join(parts) or "no rule document differs"


def _totals_line(counts: DiffCounts) -> str:
    return (
        f"{counts.added} added, {counts.removed} removed, {counts.changed} changed, "
        f"{counts.unchanged} unchanged"
    )


def render_text(result: BacktestResult) -> RenderableType:
    """The report for a terminal: the two sides, then one table per kind of difference."""
    sides = Table(title="rule sets", title_justify="left")
    sides.add_column("")
    sides.add_column("A")
    sides.add_column("B")
    for label, get in _SIDE_ROWS:
        sides.add_row(label, get(result.a), get(result.b))
    parts: list[RenderableType] = [
        Text(_events_line(result)),
        sides,
        Text(f"rules: {_rules_line(result.rules)}"),
        Text(f"open flags and late recordings: {_totals_line(result.totals)}"),
    ]
    for name, title in _CATEGORIES:
        groups: list[FlagGroup] = getattr(result, name)
        if not groups:
            continue
        table = Table(title=title, title_justify="left")
        for column in ("rule", "finding", "flags", "incidents"):
            table.add_column(
                column, justify="right" if column in ("flags", "incidents") else "left"
            )
        if name == "changed":
            table.add_column("fields")
        table.add_column(f"examples (up to {result.examples_per_group})")
        for g in groups:
            row = [g.rule_id, g.finding, str(g.flags), str(g.incidents)]
            if name == "changed":
                row.append(", ".join(f"{k} ({v})" for k, v in g.fields.items()))
            row.append("\n".join(_example_line(e) for e in g.examples))
            table.add_row(*row)
        parts.append(table)
    everything = result.all_flags
    parts.append(Text(f"all final flags (any status): {_totals_line(everything.totals)}"))
    if everything.by_rule:
        table = Table(title="all final flags by rule", title_justify="left")
        for column in ("rule", "finding", "added", "removed", "changed"):
            table.add_column(column, justify="left" if column in ("rule", "finding") else "right")
        for c in everything.by_rule:
            table.add_row(c.rule_id, c.finding, str(c.added), str(c.removed), str(c.changed))
        parts.append(table)
    if result.identical:
        parts.append(Text("no difference", style="green"))
    return Group(*parts)


def _events_line(result: BacktestResult) -> str:
    e = result.events
    end = result.until or "the last event"
    return (
        f"events read: {e.events}  rejected: {e.rejected}  duplicates: {e.duplicates}  "
        f"unknown offence codes: {e.unknown_offence_codes}  until: {end}"
    )


_SIDE_ROWS: Final[tuple[tuple[str, Callable[[SideSummary], str]], ...]] = (
    ("rules directory", lambda s: s.rules_dir),
    ("content hash", lambda s: s.content_hash),
    ("editions", lambda s: ", ".join(s.editions)),
    ("rules", lambda s: str(len(s.rule_ids))),
    ("flag changes", lambda s: str(s.flag_changes)),
    ("flags (final)", lambda s: str(s.flags)),
    ("by status", lambda s: ", ".join(f"{k} {v}" for k, v in s.by_status.items()) or "none"),
    ("open + late recordings", lambda s: str(s.counted)),
)

_CSS: Final = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
td.n { text-align: right; }
ul { margin: 0; padding-left: 1.2rem; }
code { font-size: 0.9em; }
.none { color: #2a7a2a; }
"""


def render_html(result: BacktestResult) -> str:
    """The report as one self-contained HTML page: inline style, no scripts, no links."""
    e = html.escape
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>cdi-stream backtest</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Backtest: rule set A against rule set B</h1>",
        f"<p>{e(_events_line(result))}</p>",
        "<table><tr><th></th><th>A</th><th>B</th></tr>",
    ]
    for label, get in _SIDE_ROWS:
        out.append(
            f"<tr><th>{e(label)}</th><td>{e(get(result.a))}</td><td>{e(get(result.b))}</td></tr>"
        )
    out.append("</table>")
    out.append(f"<p>Rules: {e(_rules_line(result.rules))}</p>")
    out.append(f"<h2>Open flags and late recordings: {e(_totals_line(result.totals))}</h2>")
    for name, title in _CATEGORIES:
        groups: list[FlagGroup] = getattr(result, name)
        out.append(f'<h3 id="{name}">{e(title)}: {sum(g.flags for g in groups)}</h3>')
        if not groups:
            out.append('<p class="none">none</p>')
            continue
        head = ["rule", "finding", "flags", "incidents"]
        if name == "changed":
            head.append("fields")
        head.append(f"examples (up to {result.examples_per_group})")
        out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        for g in groups:
            cells = [
                f"<td><code>{e(g.rule_id)}</code></td>",
                f"<td>{e(g.finding)}</td>",
                f'<td class="n">{g.flags}</td>',
                f'<td class="n">{g.incidents}</td>',
            ]
            if name == "changed":
                cells.append(f"<td>{e(', '.join(f'{k} ({v})' for k, v in g.fields.items()))}</td>")
            items = "".join(f"<li>{e(_example_line(x))}</li>" for x in g.examples)
            cells.append(f"<td><ul>{items}</ul></td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
    everything = result.all_flags
    out.append(f"<h2>All final flags (any status): {e(_totals_line(everything.totals))}</h2>")
    if everything.by_rule:
        out.append(
            "<table><tr><th>rule</th><th>finding</th><th>added</th><th>removed</th>"
            "<th>changed</th></tr>"
        )
        for c in everything.by_rule:
            out.append(
                f"<tr><td><code>{e(c.rule_id)}</code></td><td>{e(c.finding)}</td>"
                f'<td class="n">{c.added}</td><td class="n">{c.removed}</td>'
                f'<td class="n">{c.changed}</td></tr>'
            )
        out.append("</table>")
    if result.events.errors:
        out.append("<h2>Rejected lines</h2><ul>")
        out.extend(f"<li>{e(line)}</li>" for line in result.events.errors)
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --- the command --------------------------------------------------------------------------


def backtest_command(
    events: str,
    rules_a: Path,
    rules_b: Path,
    *,
    until: dt.datetime | None = None,
    examples: int = 5,
    json_out: Path | None = None,
    html_out: Path | None = None,
    console: Console | None = None,
    err_console: Console | None = None,
    config: EngineConfig | None = None,
) -> int:
    """Run a backtest and report it; the exit status: 0, or 2 for unusable input.

    ``events`` is a path or ``-`` for standard input. The report goes to ``console``
    unless ``json_out`` is ``-`` (JSON on standard output), in which case it goes to
    ``err_console``. Invalid rules are reported one problem a line, with file and rule
    id, as ``rules check`` reports them.
    """
    out = console or Console()
    err = err_console or Console(stderr=True, soft_wrap=True)
    if examples < 0:
        err.print(Text.assemble(("error", "red"), f" --examples must not be negative: {examples}"))
        return 2
    source: Path | Iterable[bytes]
    if events == "-":
        source = bounded_lines(sys.stdin.buffer, DEFAULT_MAX_BYTES)
    else:
        path = Path(events)
        problem = "not a file (a directory)" if path.is_dir() else "no such file"
        if path.is_dir() or not path.exists():
            err.print(Text.assemble(("error", "red"), f" {problem}: {events}"))
            return 2
        # A pipe, /dev/stdin or <(zcat ...) is read once and kept for both replays.
        source = path if path.is_file() else _lines_of(path)

    def report(error: LineError) -> None:
        err.print(Text.assemble(("rejected", "yellow"), f" {error}"))

    try:
        result = run_backtest(
            source,
            rules_a,
            rules_b,
            until=until,
            examples=examples,
            config=config,
            on_error=report,
        )
    except RuleValidationError as exc:
        for problem in exc.listed():
            err.print(Text.assemble(("error", "red"), f" {problem}"))
        return 2
    try:
        if json_out is not None and str(json_out) != "-":
            json_out.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if html_out is not None:
            html_out.write_text(render_html(result), encoding="utf-8")
    except OSError as exc:
        err.print(Text.assemble(("error", "red"), f" cannot write the report: {exc}"))
        return 2
    try:
        if json_out is not None and str(json_out) == "-":
            sys.stdout.write(result.model_dump_json(indent=2) + "\n")
            sys.stdout.flush()
            err.print(render_text(result))
        else:
            out.print(render_text(result))
            out.file.flush()
    except BrokenPipeError:  # ``backtest ... | head``: the reader has what it wanted
        stdout_reader_gone()
        return 0
    except OSError as exc:
        err.print(Text.assemble(("error", "red"), f" cannot write standard output: {exc}"))
        return 2
    return 0
