"""The facts the engine computes, by scope: the vocabulary rule conditions may use.

Rule files are data written by people, so every name a condition or template uses is
checked against this catalogue before anything is compiled. Keeping the vocabulary
here, beside nothing else, makes it the single place where the engine and the rule
authors agree on meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["subject", "victim", "reclassification", "cancellation", "closure"]
SCOPES: tuple[Scope, ...] = ("subject", "victim", "reclassification", "cancellation", "closure")


@dataclass(frozen=True, slots=True)
class FactSpec:
    """A fact a condition may test: its type and, for enumerations, its values."""

    name: str
    type: type
    values: tuple[str, ...] = ()
    doc: str = ""


def _b(name: str, doc: str) -> FactSpec:
    return FactSpec(name, bool, (), doc)


def _s(name: str, values: tuple[str, ...], doc: str) -> FactSpec:
    return FactSpec(name, str, values, doc)


PHASES = ("pending", "warn_12", "warn_20", "overdue")
BREACHES = ("none", "due", "immediate")
ROLES = ("officer", "supervisor", "crime_bureau", "ddm", "fcr", "other", "unknown")
CLOSURE_TYPES = ("none", "crime", "cri", "non_crime", "n100", "duplicate", "transferred")

FACTS: dict[Scope, dict[str, FactSpec]] = {
    "subject": {
        f.name: f
        for f in (
            _s("subject_kind", ("victim", "state"), "victim-based or state-based subject"),
            _b("recordable", "at least one disclosure without contrary evidence"),
            _b("rape", "a rape subject (19* disclosure, or the rape qualifier)"),
            _s("phase", PHASES, "where the clock stands: before 12 h, 12-20 h, 20-24 h, due"),
            _b("covered", "a standing crime (rape: a 19* crime or N100) covers it now"),
            _b("discharged", "the latest closure discharges the obligation"),
            _s("breach", BREACHES, "the not-recorded episode: none, at due_at, or at a closure"),
            _b("standing_at_breach", "the incident had a crime standing at the breach"),
            _b("covered_since_breach", "covered at some moment after the breach"),
            _b("late", "first covered after due_at"),
            _b("conduct_gap_at_due", "conduct edition: conduct or other crime missing at due"),
            _b("conduct_gap_now", "conduct edition: conduct or other crime still missing"),
        )
    },
    "victim": {
        f.name: f
        for f in (
            _b("has_recorded_crime", "a crime stands for this victim"),
            _b("pcr_gap", "the principal crime recorded is less serious than disclosed"),
            _b("injury_gap", "injury qualifier with common assault recorded"),
            _b("hate_gap", "hate qualifier with a non-aggravated class recorded"),
            _b("stalking_gap", "former partner course of conduct recorded as harassment"),
            _b(
                "closed_by_record",
                "the change that last put the classification right was to the records",
            ),
        )
    },
    "reclassification": {
        f.name: f
        for f in (
            _b("downgrade", "the new class is less serious than the old"),
            _b("has_rationale", "a non-empty rationale was given"),
            _b("restored", "a later reclassification restored the seriousness"),
        )
    },
    "cancellation": {
        f.name: f
        for f in (
            _b("reason_valid", "the reason is one of C1-C5"),
            _s(
                "reason",
                ("C1", "C2", "C3", "C4", "C5", "other"),
                "the cancellation reason: C1..C5, or other for any other code or free text",
            ),
            _b("has_avi", "additional verifiable information was recorded"),
            _s("authoriser_role", ROLES, "who authorised the cancellation"),
            _b("restricted_family", "sexual offence, violence or robbery"),
            _s("victim_informed", ("yes", "no", "unknown"), "whether the victim was told"),
            _b("crime_known", "the crime record itself has been seen"),
            _b("reinstated", "the crime was recorded again after this cancellation"),
        )
    },
    "closure": {
        f.name: f
        for f in (
            _s("closure_type", CLOSURE_TYPES, "type of the latest closure"),
            _b("has_rationale", "the latest closure carries a non-empty rationale"),
        )
    },
}

# Values a template, `expected`, `observed` or `event_time` may name, by scope. They are
# pseudonymous references, codes and times only: never names or narrative.
_COMMON_CONTEXT = ("incident_id", "edition", "now")
CONTEXT: dict[Scope, tuple[str, ...]] = {
    "subject": (
        *_COMMON_CONTEXT,
        "subject_label",
        "victim_ref",
        "principal_code",
        "reported_at",
        "clock_start",
        "due_at",
        "warn_at",
        "hours_elapsed",
        "breach_at",
        "closure_type",
        "late_at",
        "hours_late",
        "missing_code",
        "missing_due_at",
        "recorded_codes",
        "record_missing",
        "own_record_missing",
        "own_record_rule",
    ),
    "victim": (
        *_COMMON_CONTEXT,
        "subject_label",
        "victim_ref",
        "recorded_code",
        "disclosed_code",
        "expected_code",
        "qualifiers",
        "since",
    ),
    "reclassification": (
        *_COMMON_CONTEXT,
        "crime_id",
        "victim_ref",
        "from_code",
        "to_code",
        "by_role",
        "at",
    ),
    "cancellation": (
        *_COMMON_CONTEXT,
        "crime_id",
        "victim_ref",
        "offence_code",
        "reason",
        "authoriser_role",
        "victim_informed",
        "problems",
        "at",
    ),
    "closure": (*_COMMON_CONTEXT, "closure_type", "closing_code", "at"),
}

# Context values that are timestamps (allowed as a rule's `event_time`).
TIME_CONTEXT = frozenset(
    {
        "now",
        "reported_at",
        "clock_start",
        "due_at",
        "warn_at",
        "breach_at",
        "late_at",
        "missing_due_at",
        "since",
        "at",
    }
)
