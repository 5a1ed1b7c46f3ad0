"""Folding a validated event into case state.

Only what the rules need is kept: times, codes, pseudonymous references and whether a
rationale or AVI was given. Rationale text itself is free text from incident logs and
is never stored or copied into a flag.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from cdi_stream.contract import (
    CrimeCancelled,
    CrimeReclassified,
    CrimeRecorded,
    IncidentClosed,
    IncidentEvent,
    IncidentReported,
    IncidentUpdated,
    N100Recorded,
)
from cdi_stream.engine.state import (
    N100,
    Cancellation,
    CaseState,
    Closure,
    Crime,
    DisclosureVersion,
    Reclassification,
    Report,
)

T = TypeVar("T")


def has_text(value: str | None) -> bool:
    return bool(value and value.strip())


FREE_TEXT_REASON = "free text"
# One token of upper case, digits and ``._/-``, at most 16 characters: how recording
# systems write their codes (``C2``, ``CRI-03``, ``NOCRIME``). Mixed or lower case, or
# several words (``JANE DOE``), is how people write names and sentences; a code with a
# space in it is shown as free text, the price of never publishing a name.
_LOCAL_CODE = re.compile(r"[A-Z0-9][A-Z0-9._/-]{0,15}")


def local_code(value: str) -> str:
    """A code from the source system as the engine keeps it and flags show it: the code
    as given, or ``free text`` when it does not look like one. A source that sends a
    sentence instead of a code may have put a name in it, and flags and state carry
    pseudonymous references only. A cancellation reason other than ``C1``..``C5``,
    kept either way, is itself a finding."""
    code = value.strip()
    return code if _LOCAL_CODE.fullmatch(code) else FREE_TEXT_REASON


# An offence code as sent: Home Office codes are short tokens (``8N``, ``105A``); one that
# is not (a typed description, a sentence) is kept only as free text, never quoted.
# Upper case only, as for local codes: ``Jane.Doe`` is how a name is written.
_OFFENCE_CODE = re.compile(r"[0-9A-Z][0-9A-Z._/-]{0,15}")


def offence_code(value: str) -> str:
    """The offence code the engine keeps: as sent, or ``free text`` when it cannot be a
    code. Either way a code not in the offence table is unknown and not comparable."""
    return value if _OFFENCE_CODE.fullmatch(value) else FREE_TEXT_REASON


def absorb(state: CaseState, event: IncidentEvent) -> None:
    """Record ``event`` in ``state``. The caller has already rejected duplicates."""
    at = event.occurred_at.timestamp()
    state.seen.add(event.event_id)
    state.last_event_at = max(state.last_event_at, at)
    if isinstance(event, IncidentReported):
        reported_at = event.reported_at.timestamp()
        current = state.report
        if current is None or (reported_at, event.event_id) < (
            current.reported_at,
            current.event_id,
        ):
            state.report = Report(event.event_id, reported_at, at)
        _add_details(state, event, at, event.qualifiers, event.victims, event.disclosures)
    elif isinstance(event, IncidentUpdated):
        _add_details(
            state, event, at, event.qualifiers_added, event.victims_added, event.disclosures
        )
    elif isinstance(event, IncidentClosed):
        closure = Closure(
            event.event_id,
            at,
            event.closure_type,
            local_code(event.closing_code),
            has_text(event.rationale),
        )
        _insort(state.closures, closure, _closure_key)
    elif isinstance(event, CrimeRecorded):
        crime = Crime(
            event.event_id,
            at,
            event.crime_id,
            offence_code(event.offence_code),
            event.victim_ref,
            event.recorded_by_role,
        )
        existing = state.crimes.get(event.crime_id)
        if existing is None:
            state.crimes[event.crime_id] = crime
        else:
            # The earliest record is the crime; later ones are kept apart, so that the
            # same records give the same state whatever order they arrived in.
            if (at, event.event_id) < (existing.at, existing.event_id):
                state.crimes[event.crime_id], crime = crime, existing
            _insort(state.rerecords, crime, _crime_key)
    elif isinstance(event, CrimeReclassified):
        reclassification = Reclassification(
            event.event_id,
            at,
            event.crime_id,
            offence_code(event.from_code),
            offence_code(event.to_code),
            has_text(event.rationale),
            event.by_role,
        )
        _insort(state.reclassifications, reclassification, _reclassification_key)
    elif isinstance(event, CrimeCancelled):
        cancellation = Cancellation(
            event.event_id,
            at,
            event.crime_id,
            local_code(event.reason),
            has_text(event.avi),
            event.authoriser_role,
            event.victim_informed,
        )
        _insort(state.cancellations, cancellation, _cancellation_key)
    elif isinstance(event, N100Recorded):
        n100 = N100(event.event_id, at, event.n100_id, has_text(event.rationale))
        _insort(state.n100s, n100, _n100_key)


def _add_details(
    state: CaseState,
    event: IncidentReported | IncidentUpdated,
    at: float,
    qualifiers: Any,
    victims: Any,
    disclosures: Any,
) -> None:
    for q in qualifiers:
        known = state.qualifiers.get(q)
        if known is None or (at, event.event_id) < (known[0], known[1]):
            state.qualifiers[q] = [at, event.event_id]
    for v in victims:
        state.victims.setdefault(v.victim_ref, v.kind)
    # Only declared victims are kept: a disclosure's victim is a victim while that
    # disclosure is in force, and a replacing version may name another.
    for d in disclosures:
        version = DisclosureVersion(
            event_id=event.event_id,
            at=at,
            disclosure_id=d.disclosure_id,
            offence_code=offence_code(d.offence_code),
            victim_ref=d.victim_ref,
            disclosed_at=d.disclosed_at.timestamp(),
            explicit=bool(getattr(d, "disclosed_at_given", True)),
            contrary=d.contrary_evidence,
        )
        _insort(state.disclosures, version, _disclosure_key)


def _insort(items: list[T], item: T, key: Callable[[T], Any]) -> None:
    """``bisect.insort(items, item, key=key)``, with the usual case (the item belongs at
    the end) settled by one comparison."""
    if not items or key(items[-1]) <= key(item):
        items.append(item)
    else:
        bisect.insort(items, item, key=key)


# Each list of a case is kept in event-time order. Events mostly arrive in order, so
# each is inserted where it belongs (after any equal key, as a stable sort would put
# it) rather than appended and the whole list sorted again.


def _crime_key(c: Crime) -> tuple[float, str]:
    return c.at, c.event_id


def _closure_key(c: Closure) -> tuple[float, str]:
    return c.at, c.event_id


def _reclassification_key(r: Reclassification) -> tuple[float, str]:
    return r.at, r.event_id


def _cancellation_key(c: Cancellation) -> tuple[float, str]:
    return c.at, c.event_id


def _n100_key(n: N100) -> tuple[float, str]:
    return n.at, n.event_id


def _disclosure_key(d: DisclosureVersion) -> tuple[float, str, str]:
    return d.at, d.event_id, d.disclosure_id
