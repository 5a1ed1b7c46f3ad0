"""Reading what a report may be given besides events: flag changes and DDM decisions.

Both are streams of changes, so both are folded: the latest revision of each flag is
its state (as a consumer of the review topic sees it), and the latest decision on a
flag is the DDM's verdict. A flag also keeps the time it was first published, which is
when a DDM could first act on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from cdi_stream.contract import (
    DEFAULT_MAX_BYTES,
    ContractError,
    DdmDecision,
    FlagChange,
    parse_decision,
)
from cdi_stream.replay import bounded_lines


@dataclass(slots=True)
class FlagState:
    """The latest revision of one flag, and when its earliest known revision appeared."""

    flag_id: str
    incident_id: str
    rule_id: str
    finding: str
    priority: str
    status: str
    edition: str
    revision: int
    first_revision: int
    first_seen: float


@dataclass(slots=True)
class FlagFold:
    """Flag changes folded by ``flag_id``; changes may arrive in any order."""

    flags: dict[str, FlagState] = field(default_factory=dict)

    def add(self, change: FlagChange) -> None:
        seen = change.emitted_at.timestamp()
        state = self.flags.get(change.flag_id)
        if state is None:
            self.flags[change.flag_id] = FlagState(
                change.flag_id,
                change.incident_id,
                change.rule_id,
                change.finding,
                change.priority,
                change.status,
                change.edition,
                change.revision,
                change.revision,
                seen,
            )
            return
        if change.revision < state.first_revision or (
            change.revision == state.first_revision and seen < state.first_seen
        ):
            state.first_revision, state.first_seen = change.revision, seen
        if change.revision > state.revision:
            state.revision = change.revision
            state.status = change.status
            state.priority = change.priority
            state.finding = change.finding
            state.rule_id = change.rule_id
            state.edition = change.edition

    def extend(self, changes: Iterable[FlagChange]) -> None:
        for change in changes:
            self.add(change)


@dataclass(slots=True)
class ReadCounts:
    lines: int = 0
    rejected: int = 0


def read_flags(path: Path, fold: FlagFold) -> ReadCounts:
    """Fold a JSONL file of flag changes (``replay --out``, or a dump of the review
    topic); lines that are not flag changes are counted and skipped."""
    counts = ReadCounts()
    with path.open("rb") as handle:
        for raw in bounded_lines(handle, DEFAULT_MAX_BYTES):
            if not raw.strip():
                continue
            counts.lines += 1
            try:
                fold.add(FlagChange.model_validate_json(raw))
            except ValidationError:
                counts.rejected += 1
    return counts


def read_decisions(path: Path) -> tuple[list[DdmDecision], ReadCounts]:
    """Every valid decision in a JSONL file, once per ``decision_id``, in time order."""
    counts = ReadCounts()
    seen: set[str] = set()
    out: list[DdmDecision] = []
    with path.open("rb") as handle:
        for raw in bounded_lines(handle, DEFAULT_MAX_BYTES):
            if not raw.strip():
                continue
            counts.lines += 1
            try:
                decision = parse_decision(raw)
            except ContractError:
                counts.rejected += 1
                continue
            if decision.decision_id in seen:
                continue
            seen.add(decision.decision_id)
            out.append(decision)
    out.sort(key=lambda d: (d.decided_at, d.decision_id))
    return out, counts


def latest_decisions(decisions: Iterable[DdmDecision]) -> dict[str, DdmDecision]:
    """The verdict that stands on each flag, as the engine applies decisions: the latest
    by decision time, except that a rejection is final (it withdraws the flag for good,
    and the engine ignores any decision after it)."""
    latest: dict[str, DdmDecision] = {}
    for d in sorted(decisions, key=lambda d: (d.decided_at, d.decision_id)):
        current = latest.get(d.flag_id)
        if current is None or current.decision != "rejected":
            latest[d.flag_id] = d
    return latest
