"""Questions about an incident's history at a moment in event time.

Every answer is computed from event times, never from the order in which events
arrived: "was this victim covered at due_at?" has the same answer whether the crime
record arrived before or after the deadline was checked. That is what makes open
flags and late recordings independent of arrival order.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from cdi_stream.engine.state import CaseState, Closure, Crime, DisclosureVersion
from cdi_stream.offences import OffenceTable

INF = math.inf
_VALID_CLOSURE_DISCHARGE = ("transferred", "duplicate")


@dataclass(slots=True)
class CrimeView:
    """A crime as it stands: its current code after reclassifications, its cancellation."""

    crime: Crime
    code: str
    cancelled_at: float

    def standing(self, t: float) -> bool:
        return self.crime.at <= t < self.cancelled_at


class CaseView:
    """A read-only view of one case, built once per evaluation."""

    def __init__(self, state: CaseState, offences: OffenceTable) -> None:
        self.state = state
        self.offences = offences
        crimes = state.crimes
        cancelled: dict[str, float] = {}
        for c in state.cancellations:
            if c.crime_id not in cancelled:
                cancelled[c.crime_id] = c.at
        codes: dict[str, str] = {}
        for r in state.reclassifications:
            if r.crime_id in crimes:
                codes[r.crime_id] = r.to_code
        ids = sorted(crimes) if len(crimes) > 1 else list(crimes)
        self.crimes = [
            CrimeView(
                crimes[cid], codes.get(cid, crimes[cid].offence_code), cancelled.get(cid, INF)
            )
            for cid in ids
        ]
        self.crime_by_id = {v.crime.crime_id: v for v in self.crimes}
        self.closures = state.closures
        self._closure_times = [c.at for c in state.closures]
        self.n100_times = sorted(n.at for n in state.n100s if n.has_rationale)
        self.disclosures = _current_disclosures(state.disclosures)

    def closure_at(self, t: float) -> Closure | None:
        """The latest closure at or before ``t``: the one that counts at that moment."""
        i = bisect.bisect_right(self._closure_times, t)
        return self.closures[i - 1] if i else None

    def any_crime_standing(self, t: float) -> bool:
        return any(v.standing(t) for v in self.crimes)


def discharges(closure: Closure | None, rape: bool) -> bool:
    """Whether a closure ends the recording obligation for subjects not yet covered."""
    if closure is None:
        return False
    kind = closure.closure_type
    if kind in _VALID_CLOSURE_DISCHARGE:
        return True
    if kind == "cri":
        return closure.has_rationale
    return kind == "n100" and rape and closure.has_rationale


def is_immediate_breach(closure: Closure | None) -> bool:
    """A closure that decides "no crime" while a crime is owed: not recorded at once."""
    if closure is None:
        return False
    return closure.closure_type == "non_crime" or (
        closure.closure_type == "cri" and not closure.has_rationale
    )


class Cover:
    """The intervals in which a subject is covered, as [start, end) pairs."""

    __slots__ = ("intervals", "starts")

    def __init__(self, intervals: list[tuple[float, float]]) -> None:
        self.intervals = sorted(i for i in intervals if i[0] < i[1])
        self.starts = [s for s, _ in self.intervals]

    def at(self, t: float) -> bool:
        for s, e in self.intervals:  # noqa: SIM110 - a loop avoids a generator per call
            if s <= t < e:
                return True
        return False

    def first_start_after(self, t: float) -> float | None:
        i = bisect.bisect_right(self.starts, t)
        return self.starts[i] if i < len(self.starts) else None


def _current_disclosures(versions: list[DisclosureVersion]) -> list[DisclosureVersion]:
    """The version of each disclosure in force: the latest by event time, keeping the
    first ``disclosed_at`` unless a later version gave its own."""
    if len({v.disclosure_id for v in versions}) == len(versions):
        return versions  # no replacements: every version is the one in force
    by_id: dict[str, list[DisclosureVersion]] = {}
    for v in versions:
        by_id.setdefault(v.disclosure_id, []).append(v)
    out: list[DisclosureVersion] = []
    for did in sorted(by_id):
        ordered = sorted(by_id[did], key=lambda v: (v.at, v.event_id))
        latest = ordered[-1]
        disclosed_at = ordered[0].disclosed_at
        for v in ordered:
            if v.explicit:
                disclosed_at = v.disclosed_at
        out.append(
            DisclosureVersion(
                latest.event_id,
                latest.at,
                did,
                latest.offence_code,
                latest.victim_ref,
                disclosed_at,
                latest.explicit,
                latest.contrary,
            )
        )
    return out
