"""The engine: events and time in, flag changes out. No Kafka, no wall clock.

Two entry points drive it: :meth:`Engine.apply` folds one event into its incident's
case and re-evaluates that incident; :meth:`Engine.advance_to` moves event time
forward and fires every deadline, warning and retention wake-up due by then. Every
evaluation recomputes the incident's flags from its whole (bounded) history at the
current moment, so the result depends on which events have arrived and on the time,
not on the order they arrived in.

Time follows one convention everywhere: before an event at time t is applied,
everything due strictly before t fires; what is due exactly at t fires after the
events at t (on the next advance past t, or an inclusive advance to t).
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from cdi_stream.contract import (
    CrimeReclassified,
    CrimeRecorded,
    DdmDecision,
    FlagChange,
    IncidentEvent,
    IncidentReported,
    IncidentUpdated,
)
from cdi_stream.engine.config import EngineConfig
from cdi_stream.engine.deadlines import DeadlineIndex, HeapDeadlines
from cdi_stream.engine.facts import FactRow, Moment, case_facts
from cdi_stream.engine.flags import Desired, reconcile, withdraw
from cdi_stream.engine.flags import _message as message_for
from cdi_stream.engine.intake import absorb
from cdi_stream.engine.observe import EngineObserver
from cdi_stream.engine.priority import NOT_RECORDED, priority
from cdi_stream.engine.state import CaseState
from cdi_stream.engine.store import CaseStore, MemoryStore
from cdi_stream.engine.timeline import INF, CaseView
from cdi_stream.offences import OffenceTable, load_offences
from cdi_stream.rules.book import RuleBook

# A tuple, not ``A | B``: the union would be built anew on every event.
_WITH_PARTIES = (IncidentReported, IncidentUpdated)


@functools.lru_cache(maxsize=64)
def _event_stat(event_type: str) -> str:
    return f"events.{event_type}"


class EngineError(Exception):
    """Base of the errors the engine reports about its input."""


class IncidentLimitExceeded(EngineError):
    """An incident has more events than the configured bound; state must stay bounded."""


class UnknownFlag(EngineError):
    """A decision names a flag the engine never raised for that incident."""


class Engine:
    """Applies the crime-recording rules to a stream of incident events."""

    def __init__(
        self,
        book: RuleBook,
        *,
        store: CaseStore | None = None,
        deadlines: DeadlineIndex | None = None,
        config: EngineConfig | None = None,
        offences: OffenceTable | None = None,
        wall_clock: Callable[[], float] | None = None,
        observer: EngineObserver | None = None,
    ) -> None:
        self.book = book
        self.observer = observer
        self.store: CaseStore = store if store is not None else MemoryStore()
        self.deadlines: DeadlineIndex = deadlines if deadlines is not None else HeapDeadlines()
        self.config = config or EngineConfig()
        self.offences = offences or load_offences()
        self._wall = wall_clock
        self.now: float | None = None
        self._inclusive = False
        self.stats: Counter[str] = Counter()
        self._raise_status: dict[str, str] = {}
        self.use_rules(book)

    def use_rules(self, book: RuleBook) -> None:
        """Evaluate with ``book`` from now on. Flags already raised keep the edition
        they were raised under until their incident is next evaluated."""
        self.book = book
        self._raise_status = {r.id: r.raise_status for e in book.editions for r in e.rules}

    # -- entry points -------------------------------------------------------------

    def apply(self, event: IncidentEvent) -> list[FlagChange]:
        """Fold ``event`` into its case and return the flag changes that follow.

        Event time first advances to the event's time (exclusive), so deadlines due
        before it fire first. A repeated ``event_id`` changes nothing.
        """
        t = event.occurred_at.timestamp()
        case = self._live_case(event.incident_id, t)
        if case is not None and event.event_id in case.seen:
            self.stats["duplicate_events"] += 1
            return []
        limit = self.config.max_events_per_incident
        if case is not None and len(case.seen) >= limit:
            self.stats["rejected_events"] += 1
            raise IncidentLimitExceeded(
                f"incident has {len(case.seen)} events, the limit is {limit}"
            )
        if isinstance(event, _WITH_PARTIES):
            added = len(event.disclosures) + len(
                event.victims if isinstance(event, IncidentReported) else event.victims_added
            )
            held = len(case.disclosures) + len(case.victims) if case is not None else 0
            if held + added > self.config.max_parties_per_incident:
                self.stats["rejected_events"] += 1
                raise IncidentLimitExceeded(
                    f"incident would hold {held + added} disclosures and victims, the limit "
                    f"is {self.config.max_parties_per_incident}"
                )
        out = self.advance_to(t, inclusive=False) if self.now is None or t > self.now else []
        stored = self.store.get(event.incident_id)
        if stored is not None and case is None and self._drop_time(stored) < t:
            # Dated after the old case's drop time, which event time has passed without
            # its wake-up firing yet (it fires on the next advance): drop it now, so the
            # event starts a new case whatever order the events arrived in.
            self._drop(stored)
            stored = None
        case = stored or CaseState(event.incident_id)
        self.stats["events"] += 1
        self.stats[_event_stat(event.event_type)] += 1
        self._count_unknown_codes(event)
        absorb(case, event)
        assert self.now is not None
        out.extend(self._evaluate(case, Moment(self.now, self._inclusive)))
        self.store.put(case)
        return out

    def advance_to(self, t: float, *, inclusive: bool = True) -> list[FlagChange]:
        """Move event time to ``t`` and fire every wake-up due by then."""
        if self.now is not None and (
            t < self.now or (t == self.now and (self._inclusive or not inclusive))
        ):
            return []
        out: list[FlagChange] = []
        while (due := self.deadlines.pop_due(t, inclusive)) is not None:
            at, incident_id = due
            case = self.store.get(incident_id)
            if case is None:
                continue
            case.wakeup = None
            if at >= self._drop_time(case):
                self._drop(case)
                continue
            out.extend(self._evaluate(case, Moment(at, True)))
            self.store.put(case)
        self.now = t
        self._inclusive = inclusive
        return out

    def decide(self, decision: DdmDecision) -> list[FlagChange]:
        """Apply a DDM decision. ``rejected`` withdraws the flag and keeps the rule from
        raising it again for that subject; ``upheld`` marks it to resolve once the
        record is put right. Either publishes a revision carrying the decision, so every
        DDM watching the queue sees that the flag has been decided."""
        case = self.store.get(decision.incident_id)
        record = None
        if case is not None:
            record = next((f for f in case.flags.values() if f.flag_id == decision.flag_id), None)
        if case is None or record is None:
            self.stats["unknown_flag_decisions"] += 1
            raise UnknownFlag(f"no flag {decision.flag_id} on incident {decision.incident_id}")
        if decision.decision_id in case.decided:
            self.stats["duplicate_decisions"] += 1
            return []
        limit = self.config.max_events_per_incident
        if len(case.decided) >= limit:
            self.stats["rejected_decisions"] += 1
            raise IncidentLimitExceeded(
                f"incident has {len(case.decided)} decisions, the limit is {limit}"
            )
        case.decided.add(decision.decision_id)
        self.stats[f"decisions.{decision.decision}"] += 1
        out: list[FlagChange] = []
        now = self.now if self.now is not None else decision.decided_at.timestamp()
        if decision.decision == "rejected":
            if not record.suppressed:
                out.append(withdraw(record, now, self._emitted_at(now)))
        elif not record.upheld and not record.suppressed:
            # Published whatever the flag's status, so that its latest revision carries
            # the decision whichever arrived first, the decision or what closed it.
            record.upheld = True
            record.revision += 1
            out.append(message_for(record, self._emitted_at(now)))
        self.store.put(case)
        return out

    def _drop(self, case: CaseState) -> None:
        self.store.delete(case.incident_id)
        self.deadlines.schedule(case.incident_id, None)
        self.stats["incidents_dropped"] += 1
        if self.observer is not None:
            self.observer.dropped(case.incident_id)

    def is_duplicate(self, event: IncidentEvent) -> bool:
        """Whether the event was already applied: a worker reprocessing after a crash."""
        case = self._live_case(event.incident_id, event.occurred_at.timestamp())
        return case is not None and event.event_id in case.seen

    def _live_case(self, incident_id: str, t: float) -> CaseState | None:
        """The incident's case, unless it is due to be dropped before ``t``: an event
        after that starts a new case, whether or not time has been advanced to drop it."""
        case = self.store.get(incident_id)
        if case is not None and self._drop_time(case) < t:
            return None
        return case

    def current_flags(self, incident_id: str) -> list[FlagChange]:
        """The latest revision of every flag of an incident, as last published.

        Republishing these after a crash is harmless (same ids, same revisions) and
        restores any message the crash kept from reaching the review topic.
        """
        case = self.store.get(incident_id)
        if case is None:
            return []
        emitted_at = self._emitted_at(self.now if self.now is not None else case.last_event_at)
        return [message_for(rec, emitted_at) for _, rec in sorted(case.flags.items())]

    # -- evaluation ---------------------------------------------------------------

    def _evaluate(self, case: CaseState, at: Moment) -> list[FlagChange]:
        observer = self.observer
        if observer is None:
            return self._evaluate_case(case, at)
        started = time.perf_counter()
        before = dict(case.deadlines)
        changes = self._evaluate_case(case, at)
        observer.evaluated(time.perf_counter() - started)
        if case.deadlines != before:
            observer.open_deadlines(case.incident_id, tuple(case.deadlines.values()))
        return changes

    def _evaluate_case(self, case: CaseState, at: Moment) -> list[FlagChange]:
        self.stats["evaluations"] += 1
        report = case.report
        edition = self.book.edition_for(report.reported_at) if report is not None else None
        if report is None or edition is None:
            changes: list[FlagChange] = []
            if report is not None:
                # Reported before every edition (a corrected reported_at, say): no rule
                # applies, so nothing raised under an earlier report may stand.
                self.stats["no_edition"] += 1
                case.deadlines.clear()
                changes = reconcile(
                    case, "", {}, set(), self._raise_status, at.now, self._emitted_at(at.now)
                )
                self.stats["flag_changes"] += len(changes)
            self._schedule(case, [])
            return changes
        view = CaseView(case, self.offences)
        facts = case_facts(view, edition, self.book.conduct_codes, self.config, at)
        desired: dict[str, Desired] = {}
        resolved: set[str] = set()
        qualifiers = case.qualifiers
        wakeups = facts.wakeups
        # The open deadlines follow from the facts, so they are derived afresh: a
        # subject gone from the facts (its disclosure moved to another victim, say)
        # keeps none.
        case.deadlines.clear()
        for row in facts.rows:
            if row.scope == "subject":
                self._track_deadline(case, row, at)
            rules = edition.by_scope.get(row.scope)
            if not rules:
                continue
            found = edition.match(row.fact)
            raised = found.raised
            if row.optional:
                # An edition answers equal facts with the same Match object, so the
                # identity test settles most comparisons.
                for t, later in row.optional:
                    if raised or ((m := edition.match(later)) is not found and m != found):
                        wakeups.append(t)
            if not raised and not found.resolved:
                continue
            details = row.details() if raised else None
            for rule in rules:
                if details is not None and rule.id in raised:
                    key = rule.id + "|" + row.subject
                    event_time = details.context.get(rule.event_time, at.now)
                    past_due = row.due_at is not None and float(event_time) >= row.due_at
                    level = priority(
                        floor=rule.priority,
                        finding=rule.finding,
                        codes=details.priority_codes,
                        rape=row.rape,
                        qualifiers=qualifiers,
                        offences=self.offences,
                        past_due=past_due and rule.finding in NOT_RECORDED,
                    )
                    desired[key] = Desired(rule, row, details, level)
                elif rule.id in found.resolved:
                    resolved.add(rule.id + "|" + row.subject)
        if not desired and not case.flags:  # nothing wanted, nothing to take back
            self._schedule(case, wakeups)
            return []
        changes = reconcile(
            case,
            edition.id,
            desired,
            resolved,
            self._raise_status,
            at.now,
            self._emitted_at(at.now),
        )
        self.stats["flag_changes"] += len(changes)
        self._schedule(case, wakeups)
        return changes

    def _track_deadline(self, case: CaseState, row: FactRow, at: Moment) -> None:
        """Keep the subject's open deadline in the case (which the evaluation has just
        emptied), and report its outcome (first recorded, in time or late; or deadline
        breached) once."""
        fact = row.fact
        subject = row.subject
        due = row.due_at
        if not fact["recordable"] or due is None:
            return
        if fact["covered"] or fact["late"]:
            key = "recorded:" + subject
            if key in case.counted:
                return
            first = row.first_covered
            if first is None:
                return
            case.counted.add(key)
            if self.observer is not None:
                details = row.details()
                start = float(details.context.get("clock_start", due))
                in_time = first <= due and not fact["late"]
                self.observer.recorded(max(0.0, first - start), in_time)
            return
        if fact["discharged"]:
            return
        if not at.passed(due):
            case.deadlines[subject] = due
        else:
            key = "breached:" + subject
            if key not in case.counted:
                case.counted.add(key)
                if self.observer is not None:
                    self.observer.breached()

    def _schedule(self, case: CaseState, wakeups: list[float]) -> None:
        drop = self._drop_time(case)
        earliest = min(min(wakeups), drop) if wakeups else drop
        wake = None if earliest == INF else earliest
        case.wakeup = wake
        self.deadlines.schedule(case.incident_id, wake)

    def _drop_time(self, case: CaseState) -> float:
        """State is kept for the retention period after the latest closure or the last
        event, whichever is later (an event after a closure reopens the incident), and
        never dropped while a deadline is pending; an incident never reported is
        forgotten the same period after its last event."""
        if case.closures:
            kept = max(case.closures[-1].at, case.last_event_at) + self.config.retention
            if not case.deadlines:
                return kept
            # Just after the last deadline: the wake-up at it evaluates the case first.
            return max(kept, math.nextafter(max(case.deadlines.values()), INF))
        if case.report is None:
            return case.last_event_at + self.config.retention
        return INF

    def _emitted_at(self, now: float) -> float:
        return self._wall() if self._wall is not None else now

    def _count_unknown_codes(self, event: IncidentEvent) -> None:
        offences = self.offences
        unknown = 0
        if isinstance(event, _WITH_PARTIES):
            for d in event.disclosures:
                if d.offence_code not in offences:
                    unknown += 1
        elif isinstance(event, CrimeRecorded):
            unknown = event.offence_code not in offences
        elif isinstance(event, CrimeReclassified):
            unknown = (event.from_code not in offences) + (event.to_code not in offences)
        if unknown:
            self.stats["unknown_offence_codes"] += unknown

    def open_flags(self) -> dict[str, dict[str, Any]]:
        """Current open flags by id: what a DDM queue holds now."""
        out: dict[str, dict[str, Any]] = {}
        for incident_id in self.store:
            case = self.store.get(incident_id)
            if case is None:
                continue
            for rec in case.flags.values():
                if rec.status == "open":
                    out[rec.flag_id] = {"revision": rec.revision, **rec.payload}
        return out
