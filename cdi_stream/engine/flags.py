"""Turning "which rules hold now" into flag changes.

The engine computes the set of flags that should be open (or, for findings raised as
resolved, should exist) and diffs it against what it last published. A flag that is no
longer called for is resolved when its rule says the record was put right, and
withdrawn otherwise. Identity is a hash of incident, rule and subject, so replays,
restarts and reprocessing always publish the same ids with the same revisions.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from cdi_stream.contract import FlagChange, format_timestamp
from cdi_stream.engine.facts import Details, FactRow
from cdi_stream.engine.state import CaseState, FlagRecord
from cdi_stream.rules.book import CompiledRule

UTC = dt.UTC
# The contract bounds these lists; an incident near its event limit keeps the first ones.
MAX_CRIME_IDS = 200
MAX_EVIDENCE = 1000
MAX_EXPLANATION = 2000


def flag_id(incident_id: str, rule_id: str, subject: str) -> str:
    """Stable across runs, replays and restarts; reveals nothing about its inputs."""
    digest = hashlib.sha256(f"{incident_id}\x1f{rule_id}\x1f{subject}".encode()).hexdigest()
    return f"flag-{digest[:24]}"


@functools.lru_cache(maxsize=8192)
def to_datetime(ts: float) -> dt.datetime:
    """Cached: a message carries up to three times, mostly the evaluation time and the
    subject's deadline, which recur across the flags of an incident and of a moment."""
    return dt.datetime.fromtimestamp(ts, UTC)


@functools.lru_cache(maxsize=8192)
def format_time(ts: float) -> str:
    """For a sentence: to the minute, or the second when it has seconds, so that a
    record 30 seconds late never reads as made at its deadline."""
    return to_datetime(ts).strftime("%Y-%m-%d %H:%M:%S UTC" if ts % 60 else "%Y-%m-%d %H:%M UTC")


@functools.lru_cache(maxsize=8192)
def format_value_time(ts: float) -> str:
    """For ``expected``/``observed``: RFC 3339, as every timestamp in the contract."""
    return format_timestamp(to_datetime(ts))


@dataclass(slots=True)
class Desired:
    rule: CompiledRule
    row: FactRow
    details: Details
    priority: str


def payload(case: CaseState, edition_id: str, want: Desired, now: float) -> dict[str, Any]:
    """Everything a flag says except its id, revision, status and emission time."""
    rule, row, details = want.rule, want.row, want.details
    ctx = {**details.context, "now": now, "incident_id": case.incident_id, "edition": edition_id}
    shown = {k: ctx[k] for k in rule.uses}
    values = shown
    if rule.time_uses:
        values = dict(shown)
        for k in rule.time_uses:
            if isinstance(shown[k], float):
                values[k] = format_value_time(shown[k])
                shown[k] = format_time(shown[k])
    return {
        "finding": rule.finding,
        "rule_id": rule.id,
        "rule_title": rule.title,
        "reference": rule.reference,
        "edition": edition_id,
        "priority": want.priority,
        "incident_id": case.incident_id,
        "victim_ref": row.victim_ref,
        "crime_ids": list(details.crime_ids[:MAX_CRIME_IDS]),
        "expected": {k: values[src] for k, src in rule.expected},
        "observed": {k: values[src] for k, src in rule.observed},
        "due_at": row.due_at if rule.due_at is None else float(ctx[rule.due_at]),
        "event_time": float(ctx[rule.event_time]),
        "explanation": rule.explanation.format_map(shown),
        "evidence": list(details.evidence[:MAX_EVIDENCE]),
    }


def reconcile(
    case: CaseState,
    edition_id: str,
    desired: dict[str, Desired],
    resolved_keys: set[str],
    raise_status: dict[str, str],
    now: float,
    emitted_at: float,
) -> list[FlagChange]:
    """Publish what changed between the flags last published and those called for now."""
    out: list[FlagChange] = []
    if not desired and not case.flags:
        return out
    for key in sorted(desired.keys() | case.flags.keys()):
        want = desired.get(key)
        rec = case.flags.get(key)
        if want is not None:
            if rec is not None and rec.suppressed:
                continue
            body = payload(case, edition_id, want, now)
            status = want.rule.raise_status
            if rec is None:
                rec = FlagRecord(
                    flag_id(case.incident_id, want.rule.id, want.row.subject),
                    want.rule.id,
                    want.row.subject,
                    1,
                    status,
                    body,
                )
                case.flags[key] = rec
                out.append(_message(rec, emitted_at))
            elif rec.status != status or rec.payload != body:
                rec.revision += 1
                rec.status = status
                rec.payload = body
                out.append(_message(rec, emitted_at))
            continue
        assert rec is not None
        if rec.status == "open":
            # An upheld flag ends as any other: resolved when its rule says the record
            # was put right, withdrawn when it is no longer needed or another takes over.
            new_status = "resolved" if key in resolved_keys else "withdrawn"
        elif rec.status == "resolved" and raise_status.get(rec.rule_id) == "resolved":
            new_status = "withdrawn"
        else:
            continue
        rec.revision += 1
        rec.status = new_status
        rec.payload = {**rec.payload, "event_time": now}
        out.append(_message(rec, emitted_at))
    return out


def withdraw(rec: FlagRecord, now: float, emitted_at: float) -> FlagChange:
    """A DDM rejected the flag: withdraw it for good."""
    rec.suppressed = True
    rec.revision += 1
    rec.status = "withdrawn"
    rec.payload = {**rec.payload, "event_time": now}
    return _message(rec, emitted_at)


def _message(rec: FlagRecord, emitted_at: float) -> FlagChange:
    """Build the message without re-validating it: every field comes from validated
    input or from the engine itself, and the test suite checks each emitted message
    against the contract. Validation here would be a third of an evaluation's cost.

    Every field is given, so copying a template with all of them replaced
    (``model_copy``, which does not validate either) gives the same message as
    ``model_construct`` at half the cost: it skips the per-field alias and default
    handling that ``model_construct`` does."""
    p = rec.payload
    return _TEMPLATE.model_copy(
        update={
            "schema_version": 1,
            "flag_id": rec.flag_id,
            "revision": rec.revision,
            "status": rec.status,
            "finding": p["finding"],
            "rule_id": p["rule_id"],
            "rule_title": p["rule_title"],
            "reference": p["reference"],
            "edition": p["edition"],
            "priority": p["priority"],
            "incident_id": p["incident_id"],
            "victim_ref": p["victim_ref"],
            "crime_ids": p["crime_ids"],
            "expected": dict(sorted(p["expected"].items())),
            "observed": dict(sorted(p["observed"].items())),
            "due_at": to_datetime(p["due_at"]) if p["due_at"] is not None else None,
            "event_time": to_datetime(p["event_time"]),
            "emitted_at": to_datetime(emitted_at),
            "explanation": p["explanation"][:MAX_EXPLANATION],
            "evidence": p["evidence"],
            "ddm_decision": "rejected" if rec.suppressed else "upheld" if rec.upheld else None,
        }
    )


# Never published: only copied, with every field replaced, by ``_message``.
_TEMPLATE = FlagChange.model_construct(
    flag_id="flag-template",
    revision=1,
    status="withdrawn",
    finding="deadline_warning",
    rule_id="template",
    rule_title="",
    reference="",
    edition="template",
    priority="P3",
    incident_id="template",
    event_time=to_datetime(0.0),
    emitted_at=to_datetime(0.0),
    explanation="",
)
