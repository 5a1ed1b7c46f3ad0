"""A small language for writing incident histories in tests, in hours from a start."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cdi_stream.contract import FlagChange, parse_incident_event
from cdi_stream.engine import Engine, EngineConfig
from cdi_stream.rules.book import RuleBook

T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)


def at(hours: float, start: dt.datetime = T0) -> str:
    return (start + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


@dataclass
class Incident:
    """Builds contract-shaped events for one incident."""

    incident_id: str = "INC-1"
    start: dt.datetime = T0
    tag: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    def _event(self, kind: str, hours: float, **fields: Any) -> dict[str, Any]:
        event = {
            "schema_version": 1,
            "event_id": f"{self.incident_id}-{self.tag}{len(self.events) + 1}",
            "event_type": kind,
            "incident_id": self.incident_id,
            "occurred_at": at(hours, self.start),
            **fields,
        }
        self.events.append(event)
        return event

    def reported(
        self,
        hours: float = 0,
        *,
        disclosures: Iterable[tuple[str, str | None]] = (("8N", "V1"),),
        victims: Iterable[str] | None = None,
        qualifiers: Iterable[str] = (),
    ) -> Incident:
        disc = [
            {"disclosure_id": f"D{i + 1}", "offence_code": code, "victim_ref": ref}
            for i, (code, ref) in enumerate(disclosures)
        ]
        refs = (
            list(victims)
            if victims is not None
            else sorted({d["victim_ref"] for d in disc if d["victim_ref"]})
        )
        self._event(
            "incident.reported",
            hours,
            channel="999",
            opening_code="ASSAULT",
            qualifiers=list(qualifiers),
            victims=[{"victim_ref": r, "kind": "person"} for r in refs],
            disclosures=disc,
        )
        return self

    def updated(
        self,
        hours: float,
        *,
        disclosures: Iterable[dict[str, Any]] = (),
        qualifiers: Iterable[str] = (),
        victims: Iterable[str] = (),
    ) -> Incident:
        self._event(
            "incident.updated",
            hours,
            qualifiers_added=list(qualifiers),
            victims_added=[{"victim_ref": r, "kind": "person"} for r in victims],
            disclosures=list(disclosures),
        )
        return self

    def contrary(
        self, hours: float, code: str = "8N", victim: str = "V1", disclosure_id: str = "D1"
    ) -> Incident:
        """An update replacing the disclosure with one that has contrary evidence."""
        disclosure = {
            "disclosure_id": disclosure_id,
            "offence_code": code,
            "victim_ref": victim,
            "contrary_evidence": True,
        }
        return self.updated(hours, disclosures=[disclosure])

    def crime(
        self,
        hours: float,
        code: str = "8N",
        victim: str | None = "V1",
        crime_id: str = "C1",
        role: str = "crime_bureau",
    ) -> Incident:
        self._event(
            "crime.recorded",
            hours,
            crime_id=crime_id,
            offence_code=code,
            victim_ref=victim,
            offender_refs=[],
            recorded_by_role=role,
        )
        return self

    def reclassified(
        self,
        hours: float,
        from_code: str,
        to_code: str,
        rationale: str | None = None,
        crime_id: str = "C1",
    ) -> Incident:
        self._event(
            "crime.reclassified",
            hours,
            crime_id=crime_id,
            from_code=from_code,
            to_code=to_code,
            rationale=rationale,
            by_role="crime_bureau",
        )
        return self

    def cancelled(
        self,
        hours: float,
        reason: str = "C3",
        *,
        avi: str | None = None,
        role: str = "ddm",
        informed: bool | None = True,
        crime_id: str = "C1",
    ) -> Incident:
        self._event(
            "crime.cancelled",
            hours,
            crime_id=crime_id,
            reason=reason,
            avi=avi,
            authoriser_role=role,
            victim_informed=informed,
        )
        return self

    def closed(self, hours: float, kind: str = "crime", rationale: str | None = None) -> Incident:
        self._event(
            "incident.closed", hours, closure_type=kind, closing_code="CLOSE", rationale=rationale
        )
        return self

    def n100(
        self, hours: float, rationale: str | None = "credible evidence it did not occur"
    ) -> Incident:
        self._event("n100.recorded", hours, n100_id="N1", rationale=rationale)
        return self


@dataclass
class Outcome:
    changes: list[FlagChange]

    @property
    def latest(self) -> dict[str, FlagChange]:
        out: dict[str, FlagChange] = {}
        for c in self.changes:
            out[c.flag_id] = c
        return out

    def final(self, finding: str | None = None) -> list[FlagChange]:
        return sorted(
            (c for c in self.latest.values() if finding is None or c.finding == finding),
            key=lambda c: (c.finding, c.victim_ref or "", c.flag_id),
        )

    def open(self) -> list[tuple[str, str | None]]:
        return sorted((c.finding, c.victim_ref) for c in self.latest.values() if c.status == "open")

    def statuses(self) -> list[tuple[str, str | None, str]]:
        return sorted((c.finding, c.victim_ref, c.status) for c in self.latest.values())

    def history(self, finding: str) -> list[tuple[int, str]]:
        return [(c.revision, c.status) for c in self.changes if c.finding == finding]

    def open_canonical(self) -> list[tuple[object, ...]]:
        """Open flags with everything that must not depend on arrival order."""
        return sorted(
            (
                c.flag_id,
                c.finding,
                c.priority,
                json.dumps(c.expected),
                json.dumps(c.observed),
                c.due_at,
            )
            for c in self.latest.values()
            if c.status == "open"
        )

    def late_recordings(self) -> list[tuple[str, str]]:
        return sorted(
            (c.flag_id, c.status)
            for c in self.latest.values()
            if c.finding == "late_recording" and c.status != "withdrawn"
        )

    def one(self, finding: str) -> FlagChange:
        found = self.final(finding)
        assert len(found) == 1, f"expected one {finding}, got {found}"
        return found[0]


def run(
    book: RuleBook,
    events: Iterable[dict[str, Any]],
    *,
    until: float | None = None,
    start: dt.datetime = T0,
    config: EngineConfig | None = None,
    engine: Engine | None = None,
) -> Outcome:
    """Apply events in the order given, then advance to ``until`` hours (inclusive)."""
    engine = engine or Engine(book, config=config)
    changes: list[FlagChange] = []
    for event in events:
        changes.extend(engine.apply(parse_incident_event(json.dumps(event))))
    if until is not None:
        end = (start + dt.timedelta(hours=until)).timestamp()
        changes.extend(engine.advance_to(end, inclusive=True))
    return Outcome(changes)
