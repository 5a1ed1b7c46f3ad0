"""Per-incident case state: what the engine remembers of an incident between events.

The state keeps the facts of every event it has seen (times, codes, pseudonymous
references, whether a rationale was given), never free text, so that flags can be
recomputed from scratch at any moment. Recomputing from the full (bounded) history is
what makes the result independent of the order in which events arrive. Everything
here serialises to plain JSON types, because the streaming service keeps it in a
changelog-backed table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Report:
    event_id: str
    reported_at: float
    at: float


@dataclass(slots=True)
class DisclosureVersion:
    """One version of a disclosure; the latest version (by event time) is the one in force."""

    event_id: str
    at: float
    disclosure_id: str
    offence_code: str
    victim_ref: str | None
    disclosed_at: float
    explicit: bool
    contrary: bool


@dataclass(slots=True)
class Crime:
    event_id: str
    at: float
    crime_id: str
    offence_code: str
    victim_ref: str | None
    role: str


@dataclass(slots=True)
class Reclassification:
    event_id: str
    at: float
    crime_id: str
    from_code: str
    to_code: str
    has_rationale: bool
    by_role: str


@dataclass(slots=True)
class Cancellation:
    event_id: str
    at: float
    crime_id: str
    reason: str
    has_avi: bool
    role: str
    victim_informed: bool | None


@dataclass(slots=True)
class Closure:
    event_id: str
    at: float
    closure_type: str
    closing_code: str
    has_rationale: bool


@dataclass(slots=True)
class N100:
    event_id: str
    at: float
    n100_id: str
    has_rationale: bool


@dataclass(slots=True)
class FlagRecord:
    """The last published state of one flag, so the next change can be diffed against it."""

    flag_id: str
    rule_id: str
    subject: str
    revision: int
    status: str
    payload: dict[str, Any]
    suppressed: bool = False
    upheld: bool = False


@dataclass(slots=True)
class CaseState:
    incident_id: str
    seen: set[str] = field(default_factory=set)
    report: Report | None = None
    qualifiers: dict[str, list[Any]] = field(default_factory=dict)
    victims: dict[str, str] = field(default_factory=dict)
    disclosures: list[DisclosureVersion] = field(default_factory=list)
    crimes: dict[str, Crime] = field(default_factory=dict)
    # Later records of a crime id already held, in event-time order: a crime recorded
    # again after its cancellation stands again (it was reinstated).
    rerecords: list[Crime] = field(default_factory=list)
    reclassifications: list[Reclassification] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)
    closures: list[Closure] = field(default_factory=list)
    n100s: list[N100] = field(default_factory=list)
    flags: dict[str, FlagRecord] = field(default_factory=dict)
    last_event_at: float = 0.0
    wakeup: float | None = None
    # Open recording deadlines by subject, and the outcomes already reported to an
    # observer ("recorded:<subject>", "breached:<subject>"), so each is reported once.
    deadlines: dict[str, float] = field(default_factory=dict)
    counted: set[str] = field(default_factory=set)
    # Ids of the DDM decisions applied: kept apart from the events seen, so that they
    # neither use up nor escape the bound on events.
    decided: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only; ``from_dict`` restores an equal state."""
        return {
            "incident_id": self.incident_id,
            "seen": sorted(self.seen),
            "report": _row(self.report) if self.report else None,
            "qualifiers": {k: list(v) for k, v in sorted(self.qualifiers.items())},
            "victims": dict(sorted(self.victims.items())),
            "disclosures": [_row(d) for d in self.disclosures],
            "crimes": [_row(c) for c in self.crimes.values()],
            **({"rerecords": [_row(c) for c in self.rerecords]} if self.rerecords else {}),
            "reclassifications": [_row(r) for r in self.reclassifications],
            "cancellations": [_row(c) for c in self.cancellations],
            "closures": [_row(c) for c in self.closures],
            "n100s": [_row(n) for n in self.n100s],
            "flags": [_row(f) for f in self.flags.values()],
            "last_event_at": self.last_event_at,
            "wakeup": self.wakeup,
            "deadlines": dict(sorted(self.deadlines.items())),
            "counted": sorted(self.counted),
            "decided": sorted(self.decided),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseState:
        report = data.get("report")
        crimes = [Crime(**c) for c in data.get("crimes", [])]
        # States written before decisions were kept apart held them among the events
        # seen, as "decision:<id>".
        seen = set(data.get("seen", []))
        old = {k for k in seen if k.startswith(_OLD_DECISION_KEY)}
        decided = set(data.get("decided", [])) | {k[len(_OLD_DECISION_KEY) :] for k in old}
        flags = [FlagRecord(**f) for f in data.get("flags", [])]
        return cls(
            incident_id=data["incident_id"],
            seen=seen - old,
            report=Report(**report) if report else None,
            qualifiers={k: list(v) for k, v in data.get("qualifiers", {}).items()},
            victims=dict(data.get("victims", {})),
            disclosures=[DisclosureVersion(**d) for d in data.get("disclosures", [])],
            crimes={c.crime_id: c for c in crimes},
            rerecords=[Crime(**c) for c in data.get("rerecords", [])],
            reclassifications=[Reclassification(**r) for r in data.get("reclassifications", [])],
            cancellations=[Cancellation(**c) for c in data.get("cancellations", [])],
            closures=[Closure(**c) for c in data.get("closures", [])],
            n100s=[N100(**n) for n in data.get("n100s", [])],
            flags={f"{f.rule_id}|{f.subject}": f for f in flags},
            last_event_at=float(data.get("last_event_at", 0.0)),
            wakeup=data.get("wakeup"),
            deadlines={k: float(v) for k, v in data.get("deadlines", {}).items()},
            counted=set(data.get("counted", [])),
            decided=decided,
        )


_OLD_DECISION_KEY = "decision:"


def _row(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
