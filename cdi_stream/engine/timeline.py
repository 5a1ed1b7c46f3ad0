"""Questions about an incident's history at a moment in event time.

Every answer is computed from event times, never from the order in which events
arrived: "was this victim covered at due_at?" has the same answer whether the crime
record arrived before or after the deadline was checked. That is what makes open
flags and late recordings independent of arrival order.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
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
    # Its codes over time when it was reclassified, as (from, code) steps in event-time
    # order, the first at its recording; None when it kept its recorded code.
    steps: tuple[tuple[float, str], ...] | None = None

    def standing(self, t: float) -> bool:
        return self.crime.at <= t < self.cancelled_at

    def code_at(self, t: float) -> str:
        """Its code at ``t``: a reclassification changes the code from its own time on,
        never before, so a later correction does not rewrite what stood at a deadline."""
        if self.steps is None:
            return self.code
        code = self.steps[0][1]  # as recorded, also before its recorded time
        for start, step in self.steps:
            if start > t:
                break
            code = step
        return code

    def periods(self, qualifies: Callable[[str], bool]) -> list[tuple[float, float]]:
        """The [start, end) periods in which it stands with a code that ``qualifies``."""
        end = self.cancelled_at
        if self.steps is None:
            return [(self.crime.at, end)] if qualifies(self.code) else []
        out: list[tuple[float, float]] = []
        steps = self.steps
        for i, (start, code) in enumerate(steps):
            stop = min(steps[i + 1][0], end) if i + 1 < len(steps) else end
            if start >= stop or not qualifies(code):
                continue
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], stop)
            else:
                out.append((start, stop))
        return out


class CaseView:
    """A read-only view of one case, built once per evaluation.

    Most cases hold one or two crimes, no cancellations or reclassifications and at
    most one closure, and the view is rebuilt on every evaluation, so it derives only
    what every evaluation needs and skips the work a bare case does not call for;
    the index by crime id, needed only for cancellations and reclassifications, is
    built on first use.
    """

    __slots__ = (
        "_by_id",
        "closure_times",
        "closures",
        "crimes",
        "disclosures",
        "n100_times",
        "offences",
        "state",
    )

    def __init__(self, state: CaseState, offences: OffenceTable) -> None:
        self.state = state
        self.offences = offences
        self.crimes = _crime_views(state)
        self._by_id: dict[str, CrimeView] | None = None
        self.closures = state.closures
        # Closures are kept in event-time order, so their times are ascending.
        self.closure_times = [c.at for c in state.closures] if state.closures else []
        n100s = state.n100s
        self.n100_times = sorted([n.at for n in n100s if n.has_rationale]) if n100s else []
        self.disclosures = _current_disclosures(state.disclosures)

    @property
    def crime_by_id(self) -> dict[str, CrimeView]:
        """Crimes by id (built on first use); for a reinstated crime, its first record."""
        if self._by_id is None:
            by_id: dict[str, CrimeView] = {}
            for v in self.crimes:
                by_id.setdefault(v.crime.crime_id, v)
            self._by_id = by_id
        return self._by_id

    def crime_at(self, crime_id: str, t: float) -> CrimeView | None:
        """The crime with this id as recorded by ``t``: for a reinstated crime, the
        latest record made at or before ``t`` (else its first)."""
        found = self.crime_by_id.get(crime_id)
        if found is None or not self.state.rerecords:
            return found
        for v in self.crimes:
            if v.crime.crime_id == crime_id and found.crime.at < v.crime.at <= t:
                found = v
        return found

    def reinstated_after(self, cancelled: CrimeView, at: float) -> bool:
        """Whether a crime cancelled at ``at`` was recorded again, for the same victim,
        and stood: the same id recorded for someone else leaves the first victim
        without one."""
        if not self.state.rerecords:
            return False
        crime_id, victim = cancelled.crime.crime_id, cancelled.crime.victim_ref
        for v in self.crimes:
            if (
                v.crime.crime_id == crime_id
                and v.crime.victim_ref == victim
                and at <= v.crime.at < v.cancelled_at
            ):
                return True
        return False

    def disclosures_at(self, t: float) -> list[DisclosureVersion]:
        """The version of each disclosure in force at ``t``, from what was logged by
        then (``disclosures`` holds them as they stand after every event)."""
        return _current_disclosures([d for d in self.state.disclosures if d.at <= t])

    def crimes_of(self, victim_ref: str) -> list[CrimeView]:
        """The crimes recorded for one victim, by crime id."""
        return [c for c in self.crimes if c.crime.victim_ref == victim_ref] if self.crimes else []

    def closure_at(self, t: float) -> Closure | None:
        """The latest closure at or before ``t``: the one that counts at that moment."""
        if not self.closures:
            return None
        i = bisect.bisect_right(self.closure_times, t)
        return self.closures[i - 1] if i else None

    def any_crime_standing(self, t: float) -> bool:
        for v in self.crimes:  # noqa: SIM110 - a loop avoids a generator per call
            if v.crime.at <= t < v.cancelled_at:
                return True
        return False


def _crime_views(state: CaseState) -> list[CrimeView]:
    """Each crime with its codes over time and its cancellation time, by crime id.

    The first cancellation (by event time) counts; the latest reclassification (by
    event time) gives the current code. Without either, a crime stands as recorded.
    """
    crimes = state.crimes
    if not crimes:
        return []
    ids = sorted(crimes) if len(crimes) > 1 else list(crimes)
    if not state.cancellations and not state.reclassifications:
        return [CrimeView(crimes[cid], crimes[cid].offence_code, INF) for cid in ids]
    cancelled: dict[str, float] = {}
    for c in state.cancellations:
        if c.crime_id not in cancelled:
            cancelled[c.crime_id] = c.at
    reinstated = _reinstatements(state) if state.rerecords and cancelled else {}
    steps: dict[str, list[tuple[float, str]]] = {}
    for r in state.reclassifications:
        crime = crimes.get(r.crime_id)
        if crime is not None:
            steps.setdefault(r.crime_id, [(crime.at, crime.offence_code)]).append(
                (max(r.at, crime.at), r.to_code)
            )
    views: list[CrimeView] = []
    for cid in ids:
        crime = crimes[cid]
        history = steps.get(cid)
        if history is None:
            views.append(CrimeView(crime, crime.offence_code, cancelled.get(cid, INF)))
        else:
            views.append(CrimeView(crime, history[-1][1], cancelled.get(cid, INF), tuple(history)))
        for again, until in reinstated.get(cid, ()):
            views.append(_reinstated_view(state, again, until))
    return views


def _reinstatements(state: CaseState) -> dict[str, list[tuple[Crime, float]]]:
    """Crimes recorded again after their cancellation: each such record, by crime id,
    with the time of the cancellation that ends it (INF while none does).

    The first record stands until the first cancellation, as for any crime. A later
    record while the crime still stands is the same record sent again; one made after a
    cancellation reinstates the crime, from its own time until the next cancellation
    after it. Cancellations while the crime stands cancelled end nothing.
    """
    out: dict[str, list[tuple[Crime, float]]] = {}
    cancels: dict[str, list[float]] = {}
    for c in state.cancellations:
        cancels.setdefault(c.crime_id, []).append(c.at)
    for again in state.rerecords:
        times = cancels.get(again.crime_id)
        if not times:
            continue  # never cancelled: sent again while it stands
        held = out.get(again.crime_id)
        # When the record before this one stopped standing.
        ended = held[-1][1] if held else times[0]
        if again.at < ended:
            continue  # it still stood: the same record sent again
        if not held and ended < state.crimes[again.crime_id].at:
            continue  # cancelled before its first record, so it never stood to reinstate
        following = [t for t in times if t >= again.at and t > ended]
        out.setdefault(again.crime_id, []).append((again, following[0] if following else INF))
    return out


def _reinstated_view(state: CaseState, crime: Crime, until: float) -> CrimeView:
    """A reinstated crime as it stands: its own code, changed only by reclassifications
    made after it was recorded again."""
    history = [(crime.at, crime.offence_code)]
    history.extend(
        (r.at, r.to_code)
        for r in state.reclassifications
        if r.crime_id == crime.crime_id and r.at >= crime.at
    )
    if len(history) == 1:
        return CrimeView(crime, crime.offence_code, until)
    return CrimeView(crime, history[-1][1], until, tuple(history))


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
        if len(intervals) > 1:
            self.intervals = sorted([i for i in intervals if i[0] < i[1]])
            self.starts = [s for s, _ in self.intervals]
        elif intervals and intervals[0][0] < intervals[0][1]:
            # One interval, the usual case once a crime is recorded: nothing to sort.
            self.intervals = intervals
            self.starts = [intervals[0][0]]
        else:
            self.intervals = []
            self.starts = []

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
    if len(versions) < 2 or len({v.disclosure_id for v in versions}) == len(versions):
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
