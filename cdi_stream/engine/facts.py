"""Facts the rules are evaluated over, computed from a case at one moment.

For each thing a flag can be about (a subject, a victim's classification, a
reclassification, a cancellation, the closure) this module produces one flat fact
(the vocabulary in ``cdi_stream.rules.catalog``) and the context a flag needs (codes,
times, pseudonymous references). All time logic lives here and in ``timeline``: the
rules only see its results, so they stay simple enough for the durable-rules core.

Every event re-evaluates its incident from the whole history, so this module runs on
every event and is written for it: facts are cheap, anything only a flag needs is
computed lazily in ``details``, and the common shapes (one victim, one disclosure, at
most one crime or closure) take no sorting and no throwaway containers.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cdi_stream.engine.config import EngineConfig
from cdi_stream.engine.intake import FREE_TEXT_REASON
from cdi_stream.engine.state import Closure, DisclosureVersion, Reclassification
from cdi_stream.engine.timeline import (
    INF,
    CaseView,
    Cover,
    CrimeView,
    discharges,
    is_immediate_breach,
)
from cdi_stream.offences import AGGRAVATED, OffenceTable
from cdi_stream.rules.book import Edition

VALID_REASONS = frozenset({"C1", "C2", "C3", "C4", "C5"})
RESTRICTED_FAMILIES = frozenset({"sexual", "violence", "robbery"})
# The contract's hate-crime qualifiers. Only these: a qualifier the contract does not
# name (``hate_misogyny``, say) is kept and ignored by the rules, as the contract says.
HATE_QUALIFIERS = frozenset(
    {
        "hate_race",
        "hate_religion",
        "hate_disability",
        "hate_sexual_orientation",
        "hate_transgender",
    }
)


Fact = dict[str, str | int | bool]


@dataclass(frozen=True, slots=True)
class Details:
    """What a flag raised on a fact would carry. Computed only when a rule matches:
    most facts match nothing, and building these costs more than the fact itself."""

    context: dict[str, Any]
    evidence: tuple[str, ...]
    crime_ids: tuple[str, ...]
    priority_codes: tuple[str, ...]


@dataclass(slots=True)
class FactRow:
    """One fact for the rules, and how to get the details a flag on it needs."""

    scope: str
    subject: str
    fact: Fact
    details: Callable[[], Details]
    victim_ref: str | None = None
    rape: bool = False
    due_at: float | None = None
    # Future moments at which only the clock phase changes (the subject is covered and
    # stays so until another event): a wake-up is needed only if the rules' answer
    # differs at that moment.
    optional: list[tuple[float, Fact]] = field(default_factory=list)
    # When a subject was first covered (a crime that did not fall at once, or for rape
    # also an N100 with a rationale): timeliness is judged from this.
    first_covered: float | None = None


@dataclass(slots=True)
class CaseFacts:
    rows: list[FactRow] = field(default_factory=list)
    wakeups: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Moment:
    """The evaluation time, and whether deadlines falling exactly on it have fired."""

    now: float
    inclusive: bool

    def passed(self, t: float) -> bool:
        return t < self.now or (self.inclusive and t == self.now)


def case_facts(
    view: CaseView, edition: Edition, conduct_codes: frozenset[str], cfg: EngineConfig, at: Moment
) -> CaseFacts:
    """Every fact of the case at ``at``, plus the future times at which they change."""
    out = CaseFacts([], [])
    rows = out.rows
    state = view.state
    assert state.report is not None
    rape_q = "rape" in state.qualifiers
    by_victim, state_based = _by_victim(view.disclosures)
    victims = _sorted_refs(state.victims, by_victim)
    only_victim = victims[0] if len(victims) == 1 else None
    offences = view.offences
    recordable_of: dict[str, list[DisclosureVersion]] = {}
    rape_victims: set[str] = set()
    for ref in victims:
        discs = by_victim.get(ref, [])
        recordable = recordable_of[ref] = _recordable(discs)
        rape = _is_rape(offences, discs, recordable, rape_q, ref == only_victim)
        if rape:
            rape_victims.add(ref)
        if not discs and not rape:
            continue
        rows.append(
            _subject(
                view,
                edition,
                conduct_codes,
                cfg,
                at,
                "victim:" + ref,
                ref,
                discs,
                recordable,
                rape,
                out,
            )
        )
    hate = _any_hate(state.qualifiers) if state_based else False
    for d in state_based:
        discs = [d]
        rows.append(
            _subject(
                view,
                edition,
                conduct_codes,
                cfg,
                at,
                "state:" + d.disclosure_id,
                None,
                discs,
                _recordable(discs),
                False,
                out,
            )
        )
        if view.crimes and not d.contrary and d.offence_code in AGGRAVATED and hate:
            row = _state_classification(view, d, at.now)
            if row is not None:
                rows.append(row)
    for ref in _with_crime_victims(victims, view.crimes):
        row = _victim(
            view,
            edition,
            conduct_codes,
            at,
            ref,
            by_victim.get(ref, []),
            recordable_of.get(ref, []),
            ref in rape_victims,
        )
        if row is not None:
            rows.append(row)
    if view.state.reclassifications or view.state.cancellations:
        subjects = _Subjects(offences, recordable_of, rape_victims)
        if view.state.reclassifications:
            rows.extend(_reclassifications(view, subjects))
        if view.state.cancellations:
            rows.extend(_cancellations(view, subjects))
    closure = _closure(view, by_victim, state_based)
    if closure is not None:
        rows.append(closure)
    return out


def _by_victim(
    disclosures: list[DisclosureVersion],
) -> tuple[dict[str, list[DisclosureVersion]], list[DisclosureVersion]]:
    """Disclosures in force by victim, and the state-based ones (no victim)."""
    by_victim: dict[str, list[DisclosureVersion]] = {}
    state_based: list[DisclosureVersion] = []
    for d in disclosures:
        ref = d.victim_ref
        if ref is None:
            state_based.append(d)
        elif (same := by_victim.get(ref)) is None:
            by_victim[ref] = [d]
        else:
            same.append(d)
    return by_victim, state_based


def _sorted_refs(known: dict[str, str], by_victim: dict[str, list[DisclosureVersion]]) -> list[str]:
    """Every victim the case names, sorted. Intake names each disclosure's victim, so
    the union with ``by_victim`` is normally ``known`` itself."""
    for ref in by_victim:
        if ref not in known:
            return sorted(set(known) | set(by_victim))
    return sorted(known) if len(known) > 1 else list(known)


def _with_crime_victims(victims: list[str], crimes: list[CrimeView]) -> list[str]:
    """``victims`` plus the victims of recorded crimes, sorted."""
    extra: set[str] | None = None
    for c in crimes:
        ref = c.crime.victim_ref
        if ref and ref not in victims:
            if extra is None:
                extra = set()
            extra.add(ref)
    return victims if extra is None else sorted(extra.union(victims))


def _recordable(discs: list[DisclosureVersion]) -> list[DisclosureVersion]:
    """The disclosures without contrary evidence (``discs`` itself when that is all)."""
    for d in discs:
        if d.contrary:
            return [d for d in discs if not d.contrary]
    return discs


def _is_rape(
    offences: OffenceTable,
    discs: list[DisclosureVersion],
    recordable: list[DisclosureVersion],
    rape_q: bool,
    only_victim: bool,
) -> bool:
    """A rape disclosure, or a rape qualifier on the only victim or on a victim of a
    sexual offence (disclosed with contrary evidence or not)."""
    for d in recordable:
        if _is_rape_code(d.offence_code):
            return True
    if not rape_q:
        return False
    if only_victim:
        return True
    for d in discs:  # noqa: SIM110 - a loop avoids a generator per call
        if offences.family(d.offence_code) == "sexual":
            return True
    return False


def _subject(
    view: CaseView,
    edition: Edition,
    conduct_codes: frozenset[str],
    cfg: EngineConfig,
    at: Moment,
    key: str,
    victim_ref: str | None,
    discs: list[DisclosureVersion],
    recordable_discs: list[DisclosureVersion],
    rape: bool,
    out: CaseFacts,
) -> FactRow:
    """The recording clock of one subject (a victim, or one state-based disclosure):
    is it owed a crime record, covered, breached, late; its deadlines go to ``out``."""
    report = view.state.report
    assert report is not None
    reported_at = report.reported_at
    recordable = bool(recordable_discs) or (rape and not discs)
    first = _first_disclosed(recordable_discs, reported_at)
    start = first if first > reported_at else reported_at
    w1, w2 = start + cfg.first_warning, start + cfg.second_warning
    due = start + cfg.deadline

    relevant, intervals = _covering_crimes(view, victim_ref, discs, rape)
    if rape and view.n100_times:
        intervals.extend([(t, INF) for t in view.n100_times])
    cover = Cover(intervals) if intervals else _NEVER_COVERED
    now = at.now
    covered_now = cover.at(now)

    breach, breach_at = _breach(view, cover, first, due, at, rape) if recordable else _NO_BREACH
    standing_at_breach = breach_at is not None and view.any_crime_standing(breach_at)
    covered_since = False
    if breach_at is not None:
        nxt = cover.first_start_after(breach_at)
        covered_since = nxt is not None and nxt <= now
    late_at: float | None = None
    if recordable and cover.intervals and not cover.at(due):
        r1 = cover.first_start_after(due)
        if (
            r1 is not None
            and r1 <= now
            and not discharges(view.closure_at(due), rape)
            and not discharges(view.closure_at(r1), rape)
        ):
            late_at = r1

    gap = _NO_CONDUCT_GAP
    if edition.doc.conduct_in_addition and victim_ref is not None and not rape:
        gap = _conduct_gap(
            view, conduct_codes, victim_ref, recordable_discs, cover, due, cfg.deadline, at
        )
        if gap.pending is not None:
            out.wakeups.append(gap.pending)
    gap_due, gap_now = gap.at_due, gap.now

    discharged = recordable and discharges(view.closure_at(now), rape)
    phase, pending = _clock(at, w1, w2, due) if recordable else ("pending", ())
    if recordable and first > now and view.closures:
        # A clock starting later (a disclosure dated ahead) under a closure already in
        # force: a "no crime" closure breaches at the start, not at the first warning.
        out.wakeups.append(first)
    fact: Fact = {
        "scope": "subject",
        "subject_kind": "victim" if victim_ref is not None else "state",
        "recordable": recordable,
        "rape": rape,
        "phase": phase,
        "covered": covered_now,
        "discharged": discharged,
        "breach": breach,
        "standing_at_breach": standing_at_breach,
        "covered_since_breach": covered_since,
        "late": late_at is not None,
        "conduct_gap_at_due": gap_due,
        "conduct_gap_now": gap_now,
    }
    optional: list[tuple[float, Fact]] = []
    if pending:
        if covered_now:
            # Covered now means covered until another event arrives: from here on,
            # only the phase (and a conduct gap reaching due_at) can change.
            for t in pending:
                changed = dict(fact, phase=_phase_at(t, w1, w2, due))
                if t >= due and not discharged:
                    # What is missing now stays missing; from its deadline on it counts.
                    gap_then = gap_now or gap.waiting
                    changed["conduct_gap_at_due"] = changed["conduct_gap_now"] = gap_then
                optional.append((t, changed))
        else:
            out.wakeups.extend(pending)

    # A partial rather than a closure: a closure over this many locals costs more to
    # build than the fact itself, and most facts never need their details.
    details = functools.partial(
        _subject_details,
        view,
        victim_ref,
        discs,
        recordable_discs,
        relevant,
        rape,
        (start, w1, w2, due),
        phase,
        now,
        breach_at,
        late_at,
        gap,
        discharged,
    )
    return FactRow(
        "subject",
        key,
        fact,
        details,
        victim_ref,
        rape,
        due if recordable else None,
        optional,
        cover.starts[0] if cover.starts else None,
    )


def _subject_details(
    view: CaseView,
    victim_ref: str | None,
    discs: list[DisclosureVersion],
    recordable_discs: list[DisclosureVersion],
    relevant: list[CrimeView],
    rape: bool,
    clock: tuple[float, float, float, float],
    phase: str,
    now: float,
    breach_at: float | None,
    late_at: float | None,
    gap: ConductGap,
    discharged: bool,
) -> Details:
    """What a flag on a subject carries, from what its fact was computed from;
    ``clock`` is the clock start, both warning times and the deadline."""
    report = view.state.report
    assert report is not None
    start, w1, w2, due = clock
    codes = [d.offence_code for d in recordable_discs]
    principal = view.offences.most_serious(codes) or (sorted(codes)[0] if codes else "")
    warn_at = w2 if phase in ("warn_20", "overdue") else w1
    closure_at_breach = view.closure_at(breach_at) if breach_at is not None else None
    # A rape subject's cover is a rape crime, but the DDM needs to see every crime that
    # stands for the victim (a rape recorded under another class, say).
    # A state-based offence's cover is a crime of its code; the DDM needs to see what
    # stands instead.
    shown = view.crimes if victim_ref is None else view.crimes_of(victim_ref) if rape else relevant
    standing_codes = sorted({c.code for c in shown if c.standing(now)})
    context: dict[str, Any] = {
        "subject_label": f"Victim {victim_ref}"
        if victim_ref
        else f"State-based offence {principal}",
        "victim_ref": victim_ref or "",
        "principal_code": principal or "unknown",
        "reported_at": report.reported_at,
        "clock_start": start,
        "due_at": due,
        "warn_at": warn_at,
        "hours_elapsed": _hours(warn_at - start),
        "breach_at": breach_at if breach_at is not None else due,
        "closure_type": closure_at_breach.closure_type if closure_at_breach else "none",
        "late_at": late_at if late_at is not None else now,
        "hours_late": _hours((late_at - due) if late_at is not None else 0.0),
        "missing_code": gap.missing,
        "missing_due_at": gap.due_at,
        "recorded_codes": ", ".join(standing_codes) or "none",
        **_MISSING_RECORD["rape" if rape else "victim" if victim_ref else "state"],
    }
    evidence = {report.event_id, *(d.event_id for d in discs)}
    evidence.update(c.crime.event_id for c in relevant)
    if shown is not relevant:  # the crimes its recorded codes name
        evidence.update(c.crime.event_id for c in shown if c.standing(now))
    if closure_at_breach is not None:
        evidence.add(closure_at_breach.event_id)
    last_closure = view.closure_at(now)
    if discharged and last_closure is not None:
        evidence.add(last_closure.event_id)
    if rape:
        evidence.update(n.event_id for n in view.state.n100s if n.has_rationale)
    return Details(
        context=context,
        evidence=tuple(sorted(evidence)),
        crime_ids=tuple(sorted({c.crime.crime_id for c in relevant})),
        priority_codes=tuple(c for c in (principal, gap.missing) if c),
    )


# What a flag's sentence says is missing, by kind of subject.
_VICTIM_OWN_RECORD = {
    "own_record_missing": "has none of their own",
    "own_record_rule": "each victim of a victim-based offence needs a crime record "
    "(one crime per victim)",
}
_MISSING_RECORD: dict[str, dict[str, str]] = {
    "victim": {"record_missing": "no crime is recorded", **_VICTIM_OWN_RECORD},
    "rape": {
        "record_missing": "neither a rape crime (19*) nor an N100 with a rationale is recorded",
        **_VICTIM_OWN_RECORD,
    },
    "state": {
        "record_missing": "no crime of that code is recorded",
        "own_record_missing": "has no crime of its code",
        "own_record_rule": "an offence against the state needs a crime of its own code",
    },
}


def _first_disclosed(recordable: list[DisclosureVersion], default: float) -> float:
    """The earliest ``disclosed_at`` of the recordable disclosures."""
    if not recordable:
        return default
    first = recordable[0].disclosed_at
    for d in recordable:
        if d.disclosed_at < first:
            first = d.disclosed_at
    return first


_NO_BREACH: tuple[str, float | None] = ("none", None)


def _breach(
    view: CaseView, cover: Cover, first: float, due: float, at: Moment, rape: bool
) -> tuple[str, float | None]:
    """The breach a not-recorded finding stands on, and its kind.

    A breach is a moment the obligation was broken: a closure deciding "no crime"
    while the subject is not covered, from the clock's start (``first``) to ``due``
    (one exactly at ``due`` is applied before the deadline fires), or ``due`` itself,
    not covered and not discharged. The first breach counts; a later one replaces it
    only if the subject was covered in between, which put the first one right (a
    crime recorded and then cancelled before ``due``, or a second "no crime" closure).
    After ``due`` only a subject discharged at ``due`` can have one: a "no crime"
    closure replacing the discharging one while it is not covered. A subject covered at
    ``due`` whose cover is cancelled later is not breached again; the cancellation
    rules judge that.
    """
    kind, breach_at = _NO_BREACH
    now = at.now
    closures = view.closures
    if closures and first <= now and first <= due:
        if is_immediate_breach(view.closure_at(first)) and not cover.at(first):
            kind, breach_at = "immediate", first
        for t, closure in _closure_moments(view, first, min(due, now)):
            if breach_at is not None and cover.first_start_after(breach_at) is None:
                break  # never covered again: no later moment can replace the breach
            if (
                is_immediate_breach(closure)
                and not cover.at(t)
                and (breach_at is None or _covered_between(cover, breach_at, t))
            ):
                kind, breach_at = "immediate", t
    if not at.passed(due) or cover.at(due):
        return kind, breach_at
    if not discharges(view.closure_at(due), rape):
        if breach_at is None or _covered_between(cover, breach_at, due):
            kind, breach_at = "due", due
        return kind, breach_at
    if breach_at is None:
        # Discharged at due_at: a later "no crime" closure replacing the discharging one,
        # while the subject is not covered, is the immediate case.
        for t, closure in _closure_moments(view, due, now):
            if is_immediate_breach(closure) and not cover.at(t):
                return "immediate", t
    return kind, breach_at


def _closure_moments(view: CaseView, after: float, until: float) -> Iterator[tuple[float, Closure]]:
    """Each closure time in (``after``, ``until``] with the closure in force then (the
    last of those at the same time), without a search per moment."""
    closures = view.closures
    times = view.closure_times
    last = len(closures) - 1
    for i in range(bisect.bisect_right(times, after), last + 1):
        t = times[i]
        if t > until:
            return
        if i < last and times[i + 1] == t:
            continue
        yield t, closures[i]


def _covered_between(cover: Cover, after: float, until: float) -> bool:
    """Whether a cover starts after ``after`` and at or before ``until``."""
    start = cover.first_start_after(after)
    return start is not None and start <= until


def _clock(at: Moment, w1: float, w2: float, due: float) -> tuple[str, tuple[float, ...]]:
    """The clock phase at ``at`` and the clock moments still ahead of it. The moments
    are ordered (the config requires first < second warning < deadline), so once one
    has passed every earlier one has too."""
    if at.passed(due):
        return "overdue", ()
    if at.passed(w2):
        return "warn_20", (due,)
    if at.passed(w1):
        return "warn_12", (w2, due)
    return "pending", (w1, w2, due)


def _phase_at(t: float, w1: float, w2: float, due: float) -> str:
    """The clock phase at ``t`` once what is due at ``t`` has fired."""
    if due <= t:
        return "overdue"
    if w2 <= t:
        return "warn_20"
    if w1 <= t:
        return "warn_12"
    return "pending"


# A subject with nothing that could cover it (no crime, no N100): the common case
# before anything is recorded. Never mutated.
_NEVER_COVERED = Cover([])


def _covering_crimes(
    view: CaseView, victim_ref: str | None, discs: list[DisclosureVersion], rape: bool
) -> tuple[list[CrimeView], list[tuple[float, float]]]:
    """The crimes that cover a subject at some time, and the periods in which they do.

    A victim is covered by any crime of theirs while it stands; a rape subject only
    while it stands as rape (19*); a state-based subject by a crime of its code or
    that code's aggravated form (what a hate qualifier calls for), whoever its victim.
    The code counts as it was at each moment, so a reclassification after a deadline
    does not change what stood at the deadline.
    """
    if not view.crimes:
        return [], []
    qualifies: Callable[[str], bool]
    if victim_ref is None:
        # A code sent as free text says nothing about which crime covers it: two
        # different descriptions must not cover each other.
        codes = {d.offence_code for d in discs} - {FREE_TEXT_REASON}
        codes.update([AGGRAVATED[c] for c in codes if c in AGGRAVATED])
        pool, qualifies = view.crimes, codes.__contains__
    else:
        pool = view.crimes_of(victim_ref)
        if not rape:
            return pool, [(c.crime.at, c.cancelled_at) for c in pool]
        qualifies = _is_rape_code
    relevant: list[CrimeView] = []
    intervals: list[tuple[float, float]] = []
    for c in pool:
        periods = c.periods(qualifies)
        if periods:
            relevant.append(c)
            intervals.extend(periods)
    return relevant, intervals


def _is_rape_code(code: str) -> bool:
    return code.startswith("19")


@dataclass(slots=True)
class ConductGap:
    """Conduct edition: which of a victim's two required crimes is missing."""

    at_due: bool  # at its deadline (or nothing at all was recorded by due_at)
    now: bool  # one is missing now whose deadline has passed
    missing: str  # the missing code, now or else at its deadline
    due_at: float  # the deadline of the missing one
    pending: float | None  # a later deadline of one of them, still ahead
    waiting: bool  # one is missing now whose deadline is still ahead


_NO_CONDUCT_GAP = ConductGap(False, False, "", 0.0, None, False)


def _conduct_gap(
    view: CaseView,
    conduct_codes: frozenset[str],
    victim_ref: str,
    discs: list[DisclosureVersion],
    cover: Cover,
    due: float,
    deadline: float,
    at: Moment,
) -> ConductGap:
    """Conduct edition: a victim with a conduct crime and another offence disclosed
    needs both recorded, each by its own deadline: one disclosed after the other
    starts its own 24 hours (never earlier than the victim's due_at)."""
    offences = view.offences
    conduct_discs = [d for d in discs if d.offence_code in conduct_codes]
    other_discs = [
        d for d in discs if d.offence_code not in conduct_codes and d.offence_code in offences
    ]
    if not conduct_discs or not other_discs:
        return _NO_CONDUCT_GAP
    conduct = [d.offence_code for d in conduct_discs]
    other = [d.offence_code for d in other_discs]
    conduct_due = max(due, _first_disclosed(conduct_discs, due) + deadline)
    other_due = max(due, _first_disclosed(other_discs, due) + deadline)
    mine = view.crimes_of(victim_ref)

    def missing_at(t: float, need_conduct: bool, need_other: bool) -> str:
        if not cover.at(t):
            return ""
        has_conduct = any(c.standing(t) and c.code_at(t) in conduct_codes for c in mine)
        has_other = any(c.standing(t) and c.code_at(t) not in conduct_codes for c in mine)
        if need_other and has_conduct and not has_other:
            return offences.most_serious(other) or ""
        if need_conduct and has_other and not has_conduct:
            return offences.most_serious(conduct) or sorted(conduct)[0]
        return ""

    # Nothing recorded at due_at is both missing: recorded late, one of them may still be.
    gap_at_due = (
        at.passed(due) and not cover.at(due) and not discharges(view.closure_at(due), False)
    )
    at_due = ""
    checks = (
        [(due, True, True)]
        if conduct_due == other_due
        else sorted([(conduct_due, True, False), (other_due, False, True)])
    )
    for t, need_conduct, need_other in checks:
        if at.passed(t) and not discharges(view.closure_at(t), False):
            at_due = missing_at(t, need_conduct, need_other)
            if at_due:
                gap_at_due = True
                break
    # Missing now counts only once that crime is due; before, it is still in time.
    conduct_passed, other_passed = at.passed(conduct_due), at.passed(other_due)
    now = missing_at(at.now, conduct_passed, other_passed)
    waiting = not now and bool(missing_at(at.now, not conduct_passed, not other_passed))
    missing = now or at_due
    gap_due_at = conduct_due if missing in conduct_codes else other_due if missing else due
    later = max(conduct_due, other_due)
    pending = later if later > due and not at.passed(later) else None
    return ConductGap(gap_at_due, bool(now), missing, gap_due_at, pending, waiting)


def _victim(
    view: CaseView,
    edition: Edition,
    conduct_codes: frozenset[str],
    at: Moment,
    ref: str,
    discs: list[DisclosureVersion],
    recordable: list[DisclosureVersion],
    rape: bool,
) -> FactRow | None:
    """One victim's classification: what is recorded against what was disclosed and
    what the qualifiers call for. None when the victim has neither."""
    now = at.now
    crimes = view.crimes_of(ref)
    if not crimes:
        if not recordable:
            return None
        return FactRow(
            "victim",
            "victim:" + ref,
            dict(_NO_CRIME),
            functools.partial(_no_crime_details, view, ref, recordable, now),
            ref,
            rape,
        )
    standing = [c for c in crimes if c.crime.at <= now < c.cancelled_at]
    disclosed_codes = [d.offence_code for d in recordable]
    recorded_codes = [c.code for c in standing]
    q = view.state.qualifiers
    found = _classification(
        view.offences, edition, conduct_codes, q, disclosed_codes, recorded_codes
    )
    disclosed_p, recorded_p, corrected, pcr_gap, injury_gap, hate_gap, stalking_gap = found
    by_record = False
    if standing and not (pcr_gap or injury_gap or hate_gap or stalking_gap):
        by_record = _closed_by_record(
            view, crimes, now, functools.partial(_victim_gap_at, view, edition, conduct_codes, ref)
        )
    fact: dict[str, str | int | bool] = {
        "scope": "victim",
        "has_recorded_crime": bool(standing),
        "pcr_gap": pcr_gap,
        "injury_gap": injury_gap,
        "hate_gap": hate_gap,
        "stalking_gap": stalking_gap,
        "closed_by_record": by_record,
    }

    details = functools.partial(  # not a closure: see _subject
        _victim_details,
        view,
        ref,
        discs,
        crimes,
        standing,
        disclosed_codes,
        recorded_codes,
        (disclosed_p, recorded_p, corrected),
        now,
    )
    return FactRow("victim", "victim:" + ref, fact, details, ref, rape)


_Classified = tuple[str | None, str | None, str | None, bool, bool, bool, bool]


def _classification(
    offences: OffenceTable,
    edition: Edition,
    conduct_codes: frozenset[str],
    q: dict[str, list[Any]],
    disclosed_codes: list[str],
    recorded_codes: list[str],
) -> _Classified:
    """The principal disclosed and recorded codes, the code expected, and which of the
    Principal Crime, injury, hate and stalking rules the record breaks."""
    compare_disclosed, compare_recorded = disclosed_codes, recorded_codes
    in_addition = False
    if edition.doc.conduct_in_addition:
        # An unknown code is not comparable, so it is no "other offence" either (the
        # conduct gap leaves it out too); only known ones make a conduct crime count in
        # addition.
        non_conduct = [c for c in disclosed_codes if c not in conduct_codes and c in offences]
        if non_conduct and any(c in conduct_codes for c in disclosed_codes):
            in_addition = True
            compare_disclosed = non_conduct
            compare_recorded = [c for c in recorded_codes if c not in conduct_codes]
    disclosed_p = offences.most_serious(compare_disclosed)
    recorded_p = offences.most_serious(compare_recorded)
    pcr_gap = bool(disclosed_p and recorded_p and offences.more_serious(disclosed_p, recorded_p))
    corrected = disclosed_p if pcr_gap else recorded_p
    stalking = edition.doc.former_partner_stalking
    injury_gap = hate_gap = stalking_gap = False
    if corrected is not None:
        corrected, injury_gap, hate_gap, stalking_gap = _corrected(corrected, q, stalking)
    if in_addition and not (pcr_gap or injury_gap or hate_gap or stalking_gap):
        # Recorded in addition, the conduct crime has a class of its own to get right:
        # harassment by a former partner is stalking, and hate aggravates harassment.
        conduct_p = offences.most_serious([c for c in recorded_codes if c in conduct_codes])
        if conduct_p is not None:
            fixed, injury_gap, hate_gap, stalking_gap = _corrected(conduct_p, q, stalking)
            if fixed != conduct_p:
                disclosed_p = offences.most_serious(
                    [c for c in disclosed_codes if c in conduct_codes]
                )
                recorded_p, corrected = conduct_p, fixed
    return disclosed_p, recorded_p, corrected, pcr_gap, injury_gap, hate_gap, stalking_gap


def _closed_by_record(
    view: CaseView,
    crimes: list[CrimeView],
    now: float,
    gap_at: Callable[[float, float], bool],
) -> bool:
    """Whether the change that last closed a classification gap was a change to the
    records (a reclassification, a crime recorded or cancelled). A flag no longer called
    for is then resolved, the record put right; when what was disclosed or qualified
    changed instead it is withdrawn. ``gap_at(r, o)`` says whether there was a gap with
    the records as at ``r`` and the disclosures and qualifiers as at ``o``; at a moment
    where both changed, the records closed the gap if their change alone closes it."""
    state = view.state
    if len(crimes) == 1 and crimes[0].steps is None and crimes[0].cancelled_at == INF:
        # The usual case: one record, never changed. Only a later disclosure or
        # qualifier can have closed a gap, and mostly there is none.
        first = crimes[0].crime.at
        unchanged = not state.disclosures or state.disclosures[-1].at <= first
        if unchanged and all(v[0] <= first for v in state.qualifiers.values()):
            return False
    ids = {c.crime.crime_id for c in crimes}
    records = {c.crime.at for c in crimes}
    records.update(c.cancelled_at for c in crimes if c.cancelled_at != INF)
    records.update(r.at for r in state.reclassifications if r.crime_id in ids)
    others = {d.at for d in state.disclosures}
    others.update(v[0] for k, v in state.qualifiers.items() if k in _CLASSIFYING_QUALIFIERS)
    first = min(c.crime.at for c in crimes)
    changes = sorted(t for t in records | others if first < t <= now)
    for t in reversed(changes):  # the latest moment the gap closed
        before = math.nextafter(t, -INF)
        if gap_at(before, before):
            return t in records and not gap_at(t, before)
    return False


def _victim_gap_at(
    view: CaseView,
    edition: Edition,
    conduct_codes: frozenset[str],
    ref: str,
    records_at: float,
    others_at: float,
) -> bool:
    """Whether the victim's record broke a classification rule, with the records as at
    ``records_at`` and what was disclosed and qualified as at ``others_at``."""
    t = records_at
    recorded = [c.code_at(t) for c in view.crimes_of(ref) if c.standing(t)]
    if not recorded:
        return False
    disclosed = [
        d.offence_code
        for d in view.disclosures_at(others_at)
        if d.victim_ref == ref and not d.contrary
    ]
    q = {k: v for k, v in view.state.qualifiers.items() if v[0] <= others_at}
    found = _classification(view.offences, edition, conduct_codes, q, disclosed, recorded)
    return any(found[3:])


def _state_gap_at(
    view: CaseView, d: DisclosureVersion, records_at: float, others_at: float
) -> bool:
    """Whether a state-based offence's crimes lacked the aggravated class (records as
    at ``records_at``) while it was disclosed, with no evidence to the contrary, and a
    hate qualifier stood (as at ``others_at``)."""
    qualifiers = view.state.qualifiers.items()
    if not any(v[0] <= others_at for k, v in qualifiers if k in HATE_QUALIFIERS):
        return False
    in_force = [v for v in view.disclosures_at(others_at) if v.disclosure_id == d.disclosure_id]
    if not in_force or in_force[0].contrary or in_force[0].victim_ref is not None:
        return False
    code = in_force[0].offence_code
    if code != d.offence_code:
        return False  # another offence then: not the one this flag is about
    aggravated = AGGRAVATED[code]
    t = records_at
    codes = [c.code_at(t) for c in view.crimes if c.standing(t)]
    codes = [c for c in codes if c in (code, aggravated)]
    return bool(codes) and aggravated not in codes


def _state_classification(view: CaseView, d: DisclosureVersion, now: float) -> FactRow | None:
    """A state-based offence's class where a hate qualifier aggravates it, as it does a
    victim's (9A to 9B). Its crimes are those of its code or the aggravated form,
    whoever their victim; None when it has none."""
    code = d.offence_code
    aggravated = AGGRAVATED[code]
    crimes = [c for c in view.crimes if c.code in (code, aggravated)]
    if not crimes:
        return None
    standing = [c for c in crimes if c.standing(now)]
    recorded_codes = [c.code for c in standing]
    hate_gap = aggravated not in recorded_codes
    by_record = bool(standing) and not hate_gap
    if by_record:
        # Every crime that ever had one of the two codes: one reclassified away since
        # may be what made the gap.
        ever = [
            c for c in view.crimes if c.steps and any(s in (code, aggravated) for _, s in c.steps)
        ]
        by_record = _closed_by_record(
            view,
            [*crimes, *(c for c in ever if c not in crimes)],
            now,
            functools.partial(_state_gap_at, view, d),
        )
    fact: Fact = dict(
        _NO_CRIME,
        has_recorded_crime=bool(standing),
        hate_gap=hate_gap,
        closed_by_record=by_record,
    )
    details = functools.partial(
        _victim_details,
        view,
        "",
        [d],
        crimes,
        standing,
        [code],
        recorded_codes,
        (code, code if hate_gap else aggravated, aggravated),
        now,
        f"State-based offence {code}",
    )
    return FactRow("victim", "state:" + d.disclosure_id, fact, details)


def _corrected(code: str, q: dict[str, list[Any]], stalking: bool) -> tuple[str, bool, bool, bool]:
    """The class the qualifiers call for, given the class recorded (or owed by the
    Principal Crime Rule), and which of the injury, hate and stalking rules moved it."""
    corrected = code
    hate = _any_hate(q)
    injury_gap = hate_gap = stalking_gap = False
    if "injury" in q and corrected in ("105A", "105B"):
        corrected = "8P" if corrected == "105B" or hate else "8N"
        injury_gap = True
    if hate and corrected in AGGRAVATED:
        corrected = AGGRAVATED[corrected]
        hate_gap = True
    if (
        corrected in ("8L", "8M")
        and stalking
        and "former_partner" in q
        and "course_of_conduct" in q
    ):
        corrected = "8Q"
        stalking_gap = True
    return corrected, injury_gap, hate_gap, stalking_gap


def _victim_details(
    view: CaseView,
    ref: str,
    discs: list[DisclosureVersion],
    crimes: list[CrimeView],
    standing: list[CrimeView],
    disclosed_codes: list[str],
    recorded_codes: list[str],
    codes: tuple[str | None, str | None, str | None],
    now: float,
    label: str = "",
) -> Details:
    """What a classification flag on a victim (or, with ``label``, a state-based
    offence) carries; ``codes`` are the principal disclosed and recorded codes compared
    and the code expected."""
    disclosed_p, recorded_p, corrected = codes
    q = view.state.qualifiers
    used_q = sorted(k for k in q if k in _CLASSIFYING_QUALIFIERS)
    crime_ids = {c.crime.crime_id for c in crimes}
    evidence = {d.event_id for d in discs} | {c.crime.event_id for c in crimes}
    reclassified = [r for r in view.state.reclassifications if r.crime_id in crime_ids]
    evidence.update(r.event_id for r in reclassified)
    evidence.update(q[k][1] for k in used_q)
    times = [d.at for d in discs] + [c.crime.at for c in crimes] + [q[k][0] for k in used_q]
    times.extend(r.at for r in reclassified)
    all_disclosed = view.offences.most_serious(disclosed_codes)
    fallback = sorted(recorded_codes)[0] if recorded_codes else "none"
    context: dict[str, Any] = {
        "subject_label": label or f"Victim {ref}",
        "victim_ref": ref,
        "recorded_code": recorded_p or fallback,
        "disclosed_code": disclosed_p or "none",
        "expected_code": corrected or "",
        "qualifiers": ", ".join(used_q) or "none",
        "since": max(times) if times else now,
    }
    return Details(
        context=context,
        evidence=tuple(sorted(evidence)),
        crime_ids=tuple(sorted(c.crime.crime_id for c in standing)),
        priority_codes=tuple(c for c in (all_disclosed, corrected) if c),
    )


_CLASSIFYING_QUALIFIERS = HATE_QUALIFIERS | {"injury", "former_partner", "course_of_conduct"}


def _any_hate(qualifiers: dict[str, list[Any]]) -> bool:
    return not HATE_QUALIFIERS.isdisjoint(qualifiers)


_NO_CRIME: Fact = {
    "scope": "victim",
    "has_recorded_crime": False,
    "pcr_gap": False,
    "injury_gap": False,
    "hate_gap": False,
    "stalking_gap": False,
    "closed_by_record": False,
}


def _no_crime_details(
    view: CaseView, ref: str, recordable: list[DisclosureVersion], now: float
) -> Details:
    """A victim with nothing recorded: no classification to compare."""
    disclosed = view.offences.most_serious([d.offence_code for d in recordable])
    context: dict[str, Any] = {
        "subject_label": f"Victim {ref}",
        "victim_ref": ref,
        "recorded_code": "none",
        "disclosed_code": disclosed or "none",
        "expected_code": "",
        "qualifiers": "none",
        "since": max((d.at for d in recordable), default=now),
    }
    evidence = tuple(sorted({d.event_id for d in recordable}))
    codes = (disclosed,) if disclosed else ()
    return Details(context=context, evidence=evidence, crime_ids=(), priority_codes=codes)


@dataclass(slots=True)
class _Subjects:
    """What a flag about one crime takes from its victim: the most serious offence
    disclosed against them and whether they are a rape subject, so that its priority is
    the victim's, as every other flag's is."""

    offences: OffenceTable
    recordable_of: dict[str, list[DisclosureVersion]]
    rape_victims: set[str]
    _principal: dict[str, str | None] = field(default_factory=dict)

    def codes(self, victim_ref: str | None, *own: str) -> tuple[str, ...]:
        ref = victim_ref or ""
        if ref in self._principal:
            principal = self._principal[ref]
        else:  # once per victim, however many of their crimes have rows
            disclosed = self.recordable_of.get(ref)
            principal = self._principal[ref] = (
                self.offences.most_serious([d.offence_code for d in disclosed])
                if disclosed
                else None
            )
        return tuple(c for c in (*own, principal) if c)

    def rape(self, victim_ref: str | None) -> bool:
        return victim_ref is not None and victim_ref in self.rape_victims


def _restorations(offences: OffenceTable, reclasses: list[Reclassification]) -> list[bool]:
    """For each reclassification, whether a later one of the same crime restored a code
    at least as serious as the one it gave up (equal weights are never a finding, so an
    equal one restores it too). One pass from the latest back, keeping per crime the
    codes given later and the most serious of them."""
    later_codes: dict[str, set[str]] = {}
    best_later: dict[str, str] = {}
    out = [False] * len(reclasses)
    for i in range(len(reclasses) - 1, -1, -1):
        r = reclasses[i]
        codes = later_codes.get(r.crime_id)
        if codes is not None:
            best = best_later.get(r.crime_id)
            out[i] = r.from_code in codes or (
                best is not None
                and r.from_code in offences
                and not offences.more_serious(r.from_code, best)
            )
        else:
            codes = later_codes[r.crime_id] = set()
        codes.add(r.to_code)
        if r.to_code in offences:
            best = best_later.get(r.crime_id)
            best_later[r.crime_id] = (
                r.to_code if best is None else offences.most_serious([best, r.to_code]) or best
            )
    return out


def _reclassifications(view: CaseView, subjects: _Subjects) -> list[FactRow]:
    offences = view.offences
    rows: list[FactRow] = []
    reclasses = view.state.reclassifications
    if not reclasses:
        return rows
    restored_at = _restorations(offences, reclasses)
    for i, r in enumerate(reclasses):
        downgrade = bool(offences.more_serious(r.from_code, r.to_code))
        restored = restored_at[i]
        crime = view.crime_at(r.crime_id, r.at)
        victim_ref = crime.crime.victim_ref if crime else None
        fact: dict[str, str | int | bool] = {
            "scope": "reclassification",
            "downgrade": downgrade,
            "has_rationale": r.has_rationale,
            "restored": restored,
        }
        context: dict[str, Any] = {
            "crime_id": r.crime_id,
            "victim_ref": victim_ref or "",
            "from_code": r.from_code,
            "to_code": r.to_code,
            "by_role": r.by_role,
            "at": r.at,
        }
        evidence = {r.event_id} | ({crime.crime.event_id} if crime else set())
        codes = subjects.codes(victim_ref, r.from_code, r.to_code)
        found = Details(context, tuple(sorted(evidence)), (r.crime_id,), codes)
        rows.append(
            FactRow(
                scope="reclassification",
                subject=f"reclassification:{r.event_id}",
                fact=fact,
                details=_const(found),
                victim_ref=victim_ref,
                rape=subjects.rape(victim_ref),
            )
        )
    return rows


def _cancellations(view: CaseView, subjects: _Subjects) -> list[FactRow]:
    rows: list[FactRow] = []
    for c in view.state.cancellations:
        crime = view.crime_at(c.crime_id, c.at)
        # The crime as it was when cancelled: a later reclassification does not change
        # who had the authority to cancel it.
        code = crime.code_at(c.at) if crime else ""
        family = view.offences.family(code) if code else None
        restricted = family in RESTRICTED_FAMILIES
        informed = (
            "unknown" if c.victim_informed is None else ("yes" if c.victim_informed else "no")
        )
        problems = []
        if c.reason not in VALID_REASONS:
            shown = "given as free text" if c.reason == FREE_TEXT_REASON else c.reason
            problems.append(f"reason {shown} is not one of C1-C5")
        if c.reason == "C2" and not c.has_avi:
            problems.append("C2 without additional verifiable information")
        if restricted and c.role not in ("ddm", "fcr"):
            problems.append(f"a {family} crime cancelled on the authority of {c.role}")
        if c.victim_informed is False:
            problems.append("the victim was not informed")
        fact: dict[str, str | int | bool] = {
            "scope": "cancellation",
            "reason_valid": c.reason in VALID_REASONS,
            "reason": c.reason if c.reason in VALID_REASONS else "other",
            "has_avi": c.has_avi,
            "authoriser_role": c.role,
            "restricted_family": restricted,
            "victim_informed": informed,
            "crime_known": crime is not None,
            "reinstated": crime is not None and view.reinstated_after(crime, c.at),
        }
        victim_ref = crime.crime.victim_ref if crime else None
        context: dict[str, Any] = {
            "crime_id": c.crime_id,
            "victim_ref": victim_ref or "",
            "offence_code": code or "unknown",
            # The code as given (``C6``, say), or ``free text``: what the DDM must correct.
            "reason": c.reason,
            "authoriser_role": c.role,
            "victim_informed": informed,
            "problems": "; ".join(problems) or "none",
            "at": c.at,
        }
        evidence = {c.event_id} | ({crime.crime.event_id} if crime else set())
        found = Details(
            context, tuple(sorted(evidence)), (c.crime_id,), subjects.codes(victim_ref, code)
        )
        rows.append(
            FactRow(
                scope="cancellation",
                subject=f"cancellation:{c.event_id}",
                fact=fact,
                details=_const(found),
                victim_ref=victim_ref,
                rape=subjects.rape(victim_ref),
            )
        )
    return rows


def _closure(
    view: CaseView,
    by_victim: dict[str, list[DisclosureVersion]],
    state_based: list[DisclosureVersion],
) -> FactRow | None:
    if not view.closures:
        return None
    latest = view.closures[-1]
    fact: dict[str, str | int | bool] = {
        "scope": "closure",
        "closure_type": latest.closure_type,
        "has_rationale": latest.has_rationale,
    }
    details = functools.partial(_closure_details, view, by_victim, state_based)
    return FactRow("closure", "closure", fact, details)


def _closure_details(
    view: CaseView,
    by_victim: dict[str, list[DisclosureVersion]],
    state_based: list[DisclosureVersion],
) -> Details:
    """What a flag on the latest closure carries."""
    latest = view.closures[-1]
    codes = [d.offence_code for ds in by_victim.values() for d in ds if not d.contrary]
    codes += [d.offence_code for d in state_based if not d.contrary]
    principal = view.offences.most_serious(codes)
    context: dict[str, Any] = {
        "closure_type": latest.closure_type,
        "closing_code": latest.closing_code,
        "at": latest.at,
    }
    return Details(context, (latest.event_id,), (), (principal,) if principal else ())


def _const(details: Details) -> Callable[[], Details]:
    return lambda: details


def _hours(seconds: float) -> str:
    hours = seconds / 3600.0
    if hours == int(hours):
        return f"{hours:.0f}"
    if 0 < hours < 0.1:  # seconds or minutes late are late, never "0.0 hours"
        return f"{max(hours, 0.01):.2f}"
    return f"{hours:.1f}"
