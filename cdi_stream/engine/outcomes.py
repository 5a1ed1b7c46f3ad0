"""What became of each crime owed: the per-subject outcomes a recording rate is counted from.

Flags say what went wrong; a recording rate also needs what went right, and the number
of crimes owed. Both come from the same facts the rules are evaluated over
(``case_facts``), read once per case at the end of a run, so a figure computed from
these outcomes can never disagree with the engine about whether a subject was owed a
crime, covered, or late.

A *subject* is what facts.py calls one: a victim with a disclosure, or one state-based
disclosure. For each one this module records whether a crime was owed and whether it
was recorded correctly:

* *owed*: recordable, its deadline has passed (or it is already covered), and no
  closure or valid cancellation has ended the obligation while nothing covers it;
* *correct*: owed, covered now (a standing crime; for rape a 19* crime or an N100 with
  a rationale), with no classification gap on the victim's record and, in the conduct
  edition, no conduct crime or other offence missing.

Nothing here reads Kafka or the wall clock; the caller chooses the moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from cdi_stream.engine.core import Engine
from cdi_stream.engine.facts import FactRow, Moment, case_facts
from cdi_stream.engine.state import CaseState
from cdi_stream.engine.timeline import CaseView, discharges
from cdi_stream.offences import OffenceTable
from cdi_stream.rules.book import Match

__all__ = [
    "CATEGORIES",
    "VIOLENCE_GROUPS",
    "CancellationOutcome",
    "CaseOutcome",
    "SubjectOutcome",
    "case_outcomes",
    "subject_outcomes",
]

CATEGORIES = ("violence", "sexual", "rape", "domestic_abuse")
"""The categories HMICFRS reports recording rates for (besides the overall rate)."""

VIOLENCE_GROUPS = frozenset(
    {
        "Violence against the person - Homicide",
        "Death or serious injury - unlawful driving",
        "Violence with injury",
        "Violence without injury",
        "Stalking and harassment",
    }
)
"""The Home Office offence groups that make up violence against the person."""

_Matcher = Callable[[dict[str, str | int | bool]], Match]
_GAPS = ("pcr_gap", "injury_gap", "hate_gap", "stalking_gap")


@dataclass(frozen=True, slots=True)
class SubjectOutcome:
    """One subject at the moment of evaluation (times are epoch seconds)."""

    incident_id: str
    subject: str
    victim_ref: str | None
    edition: str
    reported_at: float
    clock_start: float
    due_at: float | None
    recordable: bool
    rape: bool
    covered: bool
    correctly_classified: bool
    complete: bool
    discharged: bool
    validly_cancelled: bool
    pending: bool
    late: bool
    # A closure that ended the obligation stood at due_at: nothing was owed by then.
    discharged_at_due: bool
    first_recorded_at: float | None
    principal_code: str | None
    categories: frozenset[str]

    @property
    def owed(self) -> bool:
        """Counts in a recording rate's denominator: a crime should stand for it."""
        if not self.recordable or self.pending:
            return False
        return self.covered or not (self.discharged or self.validly_cancelled)

    @property
    def correct(self) -> bool:
        """Counts in the numerator: owed, and covered by a correct crime record."""
        return self.owed and self.covered and self.correctly_classified and self.complete

    @property
    def recorded(self) -> bool:
        """Ever covered by a record (any class): counts in the timeliness denominator."""
        return self.recordable and self.first_recorded_at is not None

    @property
    def in_time(self) -> bool:
        """First recorded at or before ``due_at`` and not late (a record cancelled before
        the deadline and made again after it is late); or recorded after it where a
        closure that ended the obligation (a transfer, say) stood at the deadline, since
        nothing was owed by then."""
        if not self.recorded or self.due_at is None or self.late:
            return False
        assert self.first_recorded_at is not None
        return self.first_recorded_at <= self.due_at or self.discharged_at_due

    @property
    def hours_to_record(self) -> float | None:
        """Hours from the clock start to the first record; a record made before the
        clock started (an offence disclosed after the crime was recorded) counts as 0."""
        if self.first_recorded_at is None:
            return None
        return max(0.0, (self.first_recorded_at - self.clock_start) / 3600.0)


@dataclass(frozen=True, slots=True)
class CancellationOutcome:
    """One cancellation and whether the cancellation rules accept it."""

    incident_id: str
    crime_id: str
    edition: str
    at: float
    incorrect: bool
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    incident_id: str
    edition: str
    reported_at: float
    subjects: tuple[SubjectOutcome, ...]
    cancellations: tuple[CancellationOutcome, ...]


def subject_outcomes(
    engine: Engine, now: float, cases: Iterable[CaseState] | None = None
) -> Iterator[SubjectOutcome]:
    """Every subject of every reported case, evaluated at ``now``."""
    for outcome in case_outcomes(engine, now, cases):
        yield from outcome.subjects


def case_outcomes(
    engine: Engine, now: float, cases: Iterable[CaseState] | None = None
) -> Iterator[CaseOutcome]:
    """One outcome per case with a report and an edition, evaluated at ``now``.

    ``cases`` defaults to the engine's store; a caller that kept cases the engine has
    since dropped (retention) passes them here. ``now`` should not precede any event
    already applied: the facts are those of the case's whole history at ``now``.
    """
    at = Moment(now, True)
    for case in _cases(engine) if cases is None else cases:
        report = case.report
        if report is None:
            continue
        edition = engine.book.edition_for(report.reported_at)
        if edition is None:
            continue
        view = CaseView(case, engine.offences)
        facts = case_facts(view, edition, engine.book.conduct_codes, engine.config, at)
        subjects: list[FactRow] = []
        gaps: dict[str, bool] = {}
        cancelled_wrongly: set[str] = set()
        cancellations: list[CancellationOutcome] = []
        for row in facts.rows:
            if row.scope == "subject":
                subjects.append(row)
            elif row.scope == "victim":  # a classification, keyed as its subject is
                gaps[row.subject] = any(bool(row.fact.get(g)) for g in _GAPS)
            elif row.scope == "cancellation":
                outcome = _cancellation(case.incident_id, edition.id, row, edition.match)
                cancellations.append(outcome)
                if outcome.incorrect:
                    cancelled_wrongly.add(outcome.crime_id)
        qualifiers = case.qualifiers
        yield CaseOutcome(
            incident_id=case.incident_id,
            edition=edition.id,
            reported_at=report.reported_at,
            subjects=tuple(
                _subject(view, edition.id, row, gaps, cancelled_wrongly, qualifiers, at)
                for row in subjects
            ),
            cancellations=tuple(cancellations),
        )


def _cases(engine: Engine) -> Iterator[CaseState]:
    store = engine.store
    for incident_id in store:
        case = store.get(incident_id)
        if case is not None:
            yield case


def _subject(
    view: CaseView,
    edition_id: str,
    row: FactRow,
    gaps: dict[str, bool],
    cancelled_wrongly: set[str],
    qualifiers: Mapping[str, object],
    at: Moment,
) -> SubjectOutcome:
    fact = row.fact
    state = view.state
    assert state.report is not None
    reported_at = state.report.reported_at
    recordable = bool(fact["recordable"])
    covered = bool(fact["covered"])
    if not recordable:
        # Nothing owed: skip the details, which only a recordable subject needs.
        return SubjectOutcome(
            incident_id=state.incident_id,
            subject=row.subject,
            victim_ref=row.victim_ref,
            edition=edition_id,
            reported_at=reported_at,
            clock_start=reported_at,
            due_at=None,
            recordable=False,
            rape=row.rape,
            covered=covered,
            correctly_classified=True,
            complete=True,
            discharged=bool(fact["discharged"]),
            validly_cancelled=False,
            pending=False,
            late=False,
            discharged_at_due=False,
            first_recorded_at=None,
            principal_code=None,
            categories=frozenset(),
        )
    details = row.details()
    context = details.context
    wanted = set(details.crime_ids)
    ref = row.victim_ref
    # Reinstated records too, but only this subject's: the same id may be recorded
    # again for another victim.
    crimes = [
        v
        for v in view.crimes
        if v.crime.crime_id in wanted and (ref is None or v.crime.victim_ref == ref)
    ]
    principal = str(context.get("principal_code", "")) or None
    if principal == "unknown":
        principal = None
    due_at = row.due_at
    first_recorded_at = row.first_covered
    late = bool(fact["late"])
    discharged = bool(fact["discharged"])
    closure = view.closure_at(at.now) if row.rape and discharged else None
    n100_closed = closure.at if closure is not None and closure.closure_type == "n100" else None
    if n100_closed is not None:
        # An N100 closure with a rationale stands in for a rape crime as an N100
        # record does: counted as recorded, from the closure, not left out as discharged.
        covered, discharged = True, False
        if first_recorded_at is None or n100_closed < first_recorded_at:
            first_recorded_at = n100_closed
    if row.rape and row.victim_ref is not None and due_at is not None:
        # Timeliness counts a record of any class: a rape recorded under another class
        # was recorded (the rape rate counts its class as wrong), and one reclassified
        # to rape later was recorded when first recorded.
        first_recorded_at, late = _any_class_record(view, row.victim_ref, due_at, n100_closed)
    validly_cancelled = (
        not covered
        and bool(crimes)
        and all(c.cancelled_at != float("inf") for c in crimes)
        and not any(c.crime.crime_id in cancelled_wrongly for c in crimes)
    )
    return SubjectOutcome(
        incident_id=state.incident_id,
        subject=row.subject,
        victim_ref=row.victim_ref,
        edition=edition_id,
        reported_at=reported_at,
        clock_start=float(context.get("clock_start", reported_at)),
        due_at=due_at,
        recordable=True,
        rape=row.rape,
        covered=covered,
        correctly_classified=not gaps.get(row.subject, False),
        # A crime owed in addition is missing only once it is due (the fact says so,
        # by that crime's own deadline when it was disclosed later).
        complete=not fact.get("conduct_gap_now", False),
        discharged=discharged,
        validly_cancelled=validly_cancelled,
        # Not yet due, unless a "no crime" closure has already broken the obligation
        # (the engine raises its not-recorded finding at once).
        pending=not covered
        and due_at is not None
        and not at.passed(due_at)
        and fact["breach"] == "none",
        late=late,
        discharged_at_due=due_at is not None and discharges(view.closure_at(due_at), row.rape),
        first_recorded_at=first_recorded_at,
        principal_code=principal,
        categories=_categories(view.offences, principal, row.rape, qualifiers),
    )


def _any_class_record(
    view: CaseView, victim_ref: str, due_at: float, n100_closed: float | None
) -> tuple[float | None, bool]:
    """When a victim was first recorded, with a crime of any class that stood, an N100
    record or an N100 closure, and whether that was late: nothing standing at
    ``due_at`` but a record after it, with no closure that ended the obligation
    standing at ``due_at``."""
    crimes = [c for c in view.crimes_of(victim_ref) if c.crime.at < c.cancelled_at]
    n100s = [*view.n100_times, *([] if n100_closed is None else [n100_closed])]
    times = [c.crime.at for c in crimes] + n100s
    if not times:
        return None, False
    standing = any(c.standing(due_at) for c in crimes) or any(t <= due_at for t in n100s)
    late = not standing and max(times) > due_at and not discharges(view.closure_at(due_at), True)
    return min(times), late


def _categories(
    offences: OffenceTable, principal: str | None, rape: bool, qualifiers: Mapping[str, object]
) -> frozenset[str]:
    """Violence and sexual offences by the principal disclosed offence's group; rape by
    the engine's rape subject (a 19* disclosure or the rape qualifier), which is also a
    sexual offence; domestic abuse by the incident's qualifier."""
    found: list[str] = []
    offence = offences.get(principal) if principal else None
    if offence is not None and offence.group in VIOLENCE_GROUPS:
        found.append("violence")
    if rape or (offence is not None and offence.family == "sexual"):
        found.append("sexual")
    if rape:
        found.append("rape")
    if "domestic_abuse" in qualifiers:
        found.append("domestic_abuse")
    return frozenset(found)


def _cancellation(
    incident_id: str, edition_id: str, row: FactRow, match: _Matcher
) -> CancellationOutcome:
    fact = row.fact
    context = row.details().context
    problems: list[str] = []
    if not fact["reason_valid"]:
        problems.append("invalid_reason")
    if fact["reason"] == "C2" and not fact["has_avi"]:
        problems.append("c2_without_avi")
    if fact["restricted_family"] and fact["authoriser_role"] not in ("ddm", "fcr"):
        problems.append("unauthorised")
    if fact["victim_informed"] == "no":
        problems.append("victim_not_informed")
    return CancellationOutcome(
        incident_id=incident_id,
        crime_id=str(context["crime_id"]),
        edition=edition_id,
        at=float(context["at"]),
        # Judged as made: a crime reinstated later puts the record right (its flag is
        # resolved), but the cancellation was still wrong.
        incorrect=bool(match({**fact, "reinstated": False}).raised),
        problems=tuple(problems),
    )
