"""Synthetic incident streams with known answers, for scoring the rules end to end.

A force's real incident data cannot be shared and carries no ground truth: nobody knows
which incidents hide an unrecorded crime until an inspector audits a sample. This module
makes streams that look like a mid-sized force's control-room and crime-recording feeds
and knows, for each incident, which recording error (if any) was planted in it, so a run
of the rules engine can be scored against the truth.

Choices that are not obvious from the code:

* Pure and deterministic. One ``random.Random(seed)`` drives everything, incidents are
  built one at a time in report order, and times are whole seconds counted from
  ``SimConfig.start``; nothing reads the wall clock. The same config always gives the
  same bytes, so a stream can be regenerated instead of stored.
* The defect is drawn before the kind of incident, and the kind is then drawn among
  those in which that defect can occur (a state-based public-order offence has no
  victim to leave out). The defect shares therefore match the configured rates, at the
  cost of a slightly different incident mix within each defect.
* Defects are planted one per incident and only in incidents that disclose a crime;
  incidents without a defect may carry benign complications (an upward
  reclassification, a duplicate cancelled properly, contrary evidence, an N100) that a
  correct engine must not flag.
* No personal data: victims and offenders are pseudonymous ``V-``/``O-`` references and
  every free-text field is one of the fixed ``PLACEHOLDER_TEXTS``, so the output can be
  published as test data.
* Report times follow a daily demand curve (quiet before dawn, busiest in the early
  evening) scaled so that ``mean_gap_seconds`` stays the mean over a whole day.
"""

from __future__ import annotations

import bisect
import heapq
import io
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import IO, Any, Final, Generic, TypeVar, cast

import pydantic_core

from cdi_stream.offences import OffenceTable, load_offences

__all__ = [
    "CATEGORIES",
    "DEFECTS",
    "DEFECT_DETAILS",
    "PLACEHOLDER_TEXTS",
    "DefectRates",
    "SimConfig",
    "Truth",
    "encode_event",
    "generate",
    "write_jsonl",
]

T = TypeVar("T")

HOUR: Final = 3600
# 2020-04-01 00:00 Europe/London (BST): from then on a former partner's course of
# conduct is recorded as stalking.
STALKING_RULE_STARTS: Final = 1_585_695_600
DEADLINE: Final = 24 * HOUR

DEFECTS: Final = ("unrecorded", "late", "misclassified", "undercounted", "wrongly_cancelled")
CATEGORIES: Final = (
    "violence",
    "theft",
    "criminal_damage",
    "domestic_abuse",
    "sexual",
    "rape",
    "conduct",
    "non_crime",
    "robbery",
    "burglary",
    "public_order",
)

# --- fixed texts: the only free text the generator ever writes -------------------------

NON_CRIME_RATIONALE: Final = "NCRS test applied: no notifiable offence disclosed"
CONTRARY_RATIONALE: Final = "NCRS test applied: credible evidence to the contrary"
UPGRADE_RATIONALE: Final = "Additional information: more serious offence confirmed"
N100_RATIONALES: Final = (
    "N100: credible evidence that the reported offence did not occur",
    "N100: reported by a third party; the victim does not confirm the offence",
    "N100: offence committed in another force area; transferred",
)
VALID_AVI: Final = "AVI: verifiable evidence that no notifiable offence occurred"
DEFECT_DETAILS: Final = {
    "unrecorded": ("closed_non_crime", "closed_cri_without_rationale", "left_open"),
    "late": ("recorded_after_deadline",),
    "misclassified": (
        "less_serious_class",
        "injury_ignored",
        "hate_ignored",
        "former_partner_stalking_ignored",
    ),
    "undercounted": ("victim_missed", "later_victim_missed"),
    "wrongly_cancelled": (
        "invalid_reason",
        "c2_without_avi",
        "unauthorised",
        "victim_not_informed",
    ),
}
"""Every value ``Truth.defect_detail`` takes, by defect."""

PLACEHOLDER_TEXTS: Final = frozenset(
    {NON_CRIME_RATIONALE, CONTRARY_RATIONALE, UPGRADE_RATIONALE, VALID_AVI, *N100_RATIONALES}
)
"""Every non-empty rationale or AVI text in a generated stream is one of these."""


# --- public configuration and results ------------------------------------------------


@dataclass(frozen=True)
class DefectRates:
    """Share of crime-disclosing incidents that carry each recording error.

    The defaults sit inside the ranges HMICFRS crime data integrity inspections found
    (10-25% of crimes unrecorded; a few percent late, misclassified or wrongly
    cancelled), so an engine is tested against a plausible force, not a clean one.
    """

    unrecorded: float = 0.15
    late: float = 0.06
    misclassified: float = 0.05
    undercounted: float = 0.05
    wrongly_cancelled: float = 0.02

    def __post_init__(self) -> None:
        for name in DEFECTS:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"defect rate {name}={value!r} must be between 0 and 1")
        total = self.total
        if total > 1.0 + 1e-9:
            raise ValueError(f"defect rates add up to {total:.4f}; they must not exceed 1")

    @property
    def total(self) -> float:
        return math.fsum(getattr(self, name) for name in DEFECTS)

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in DEFECTS}


@dataclass(frozen=True)
class SimConfig:
    """What to generate. Equal configs give byte-identical streams."""

    seed: int = 1
    incidents: int = 1000
    start: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    mean_gap_seconds: float = 43.2
    defects: DefectRates = field(default_factory=DefectRates)
    non_crime_share: float = 0.25

    def __post_init__(self) -> None:
        if self.incidents < 0:
            raise ValueError(f"incidents={self.incidents} must not be negative")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if not math.isfinite(self.mean_gap_seconds) or self.mean_gap_seconds <= 0:
            raise ValueError(f"mean_gap_seconds={self.mean_gap_seconds} must be positive")
        if not 0.0 <= self.non_crime_share <= 1.0:
            raise ValueError(f"non_crime_share={self.non_crime_share} must be between 0 and 1")


@dataclass(frozen=True)
class Truth:
    """What really happened in one incident, to score the engine's flags against.

    ``disclosed_codes`` are the offences disclosed and still in force without contrary
    evidence; ``recorded_codes`` the current codes of the crimes still standing at the
    end. A *subject* is a victim with a recordable disclosure, or one state-based
    disclosure. It is *covered* when it ends with a crime of the right class (for rape,
    or an N100 with a rationale), however late. ``recorded_within_24h`` says whether
    every subject got a crime record, of any class, within 24 hours of its clock start.

    ``defect_detail`` says how the defect was planted (see ``DEFECT_DETAILS``), so a
    flag can be matched to the rule that should raise it; ``complications`` name the
    features a correct engine must take in its stride (a victim added later, an N100,
    a proper cancellation of a duplicate, ...), with or without a defect.
    """

    incident_id: str
    category: str
    defect: str | None
    victims: tuple[str, ...]
    disclosed_codes: tuple[str, ...]
    recorded_codes: tuple[str, ...]
    reported_at: datetime
    recorded_within_24h: bool | None
    recordable_subjects: int
    covered_subjects: int
    defect_detail: str | None = None
    complications: tuple[str, ...] = ()


# --- the catalogue of incident kinds ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Variant:
    """One way an incident of a category can look.

    ``code`` is what the call handler discloses; ``correct`` the class a right record
    takes when that differs (a qualifier or a rule changes it); ``wrong`` a less serious
    class that a misclassification records instead. ``hate`` in ``qualifiers`` stands
    for a racial or religious hate qualifier, drawn per incident.
    """

    code: str
    weight: float
    opening: str
    qualifiers: tuple[str, ...] = ()
    kind: str = "person"  # "person", "organisation" or "state" (no victim)
    correct: str = ""
    wrong: str = ""
    multi: bool = False  # may have several victims, one crime each
    lesser: str = ""  # a lesser offence an update may add against the same victim
    offender: float = 0.5  # chance the offender is identified
    defect_only: bool = False  # exists only to plant a misclassification
    maybe_former: bool = False  # domestic abuse by a former partner, sometimes
    flaw: str = "less_serious_class"  # how a misclassification of this variant shows
    note: str = ""  # the complication a correct record of this variant involves

    @property
    def record(self) -> str:
        return self.correct or self.code


_V = _Variant

_CATALOGUE: Final[dict[str, tuple[_Variant, ...]]] = {
    "violence": (
        _V("105A", 50, "ASSAULT", multi=True, lesser="58D", offender=0.6),
        _V("8N", 28, "ASSAULT", ("injury",), wrong="105A", multi=True, lesser="58D", offender=0.6),
        _V("5D", 4, "ASSAULT", ("injury", "weapon"), wrong="8N", offender=0.5),
        _V("105B", 6, "HATE INCIDENT", ("hate",), wrong="105A", multi=True, offender=0.5),
        _V("8P", 2, "HATE INCIDENT", ("injury", "hate"), wrong="8N", offender=0.5),
        _V(
            "105A",
            3,
            "ASSAULT",
            ("injury",),
            correct="8N",
            wrong="105A",
            flaw="injury_ignored",
            defect_only=True,
        ),
        _V(
            "105A",
            2,
            "HATE INCIDENT",
            ("hate",),
            correct="105B",
            wrong="105A",
            flaw="hate_ignored",
            defect_only=True,
        ),
    ),
    "theft": (
        _V("49", 32, "THEFT", offender=0.2),
        _V("46", 32, "SHOPLIFTING", kind="organisation", offender=0.7),
        _V("39", 10, "THEFT", wrong="49", multi=True, offender=0.2),
        _V("45", 15, "THEFT FROM VEHICLE", offender=0.1),
        _V("44", 7, "THEFT", offender=0.1),
        _V("49A", 4, "MAKE OFF WITHOUT PAYMENT", kind="organisation", offender=0.4),
    ),
    "criminal_damage": (
        _V("58A", 30, "CRIMINAL DAMAGE", offender=0.35),
        _V("58B", 15, "CRIMINAL DAMAGE", kind="organisation", offender=0.2),
        _V("58C", 40, "CRIMINAL DAMAGE", multi=True, offender=0.15),
        _V("58D", 15, "CRIMINAL DAMAGE", offender=0.3),
    ),
    "burglary": (
        _V("28E", 50, "BURGLARY", wrong="40", lesser="58A", offender=0.1),
        _V("28F", 15, "BURGLARY", wrong="58A", offender=0.1),
        _V("30C", 28, "BURGLARY", kind="organisation", offender=0.1),
        _V("30D", 7, "BURGLARY", kind="organisation", offender=0.1),
    ),
    "robbery": (
        _V("34B", 85, "ROBBERY", wrong="39", multi=True, offender=0.3),
        _V("34A", 15, "ROBBERY", kind="organisation", offender=0.3),
    ),
    "domestic_abuse": (
        _V("105A", 36, "DOMESTIC", maybe_former=True, lesser="58A", offender=1.0),
        _V("8N", 22, "DOMESTIC", ("injury",), wrong="105A", maybe_former=True, offender=1.0),
        _V("3B", 4, "DOMESTIC", maybe_former=True, offender=1.0),
        _V("8U", 12, "DOMESTIC", ("course_of_conduct",), offender=1.0),
        _V("8L", 5, "DOMESTIC", ("course_of_conduct",), offender=1.0),
        _V("8Q", 10, "DOMESTIC", ("former_partner", "course_of_conduct"), offender=1.0),
        # A former partner's course of conduct is recorded as stalking (2020 rule), so an
        # 8L disclosure is rightly recorded as 8Q.
        _V(
            "8L",
            6,
            "DOMESTIC",
            ("former_partner", "course_of_conduct"),
            correct="8Q",
            offender=1.0,
            note="former_partner_stalking",
        ),
        _V(
            "8L",
            3,
            "DOMESTIC",
            ("former_partner", "course_of_conduct"),
            correct="8Q",
            wrong="8L",
            offender=1.0,
            flaw="former_partner_stalking_ignored",
            defect_only=True,
        ),
        _V(
            "105A",
            3,
            "DOMESTIC",
            ("injury",),
            correct="8N",
            wrong="105A",
            maybe_former=True,
            offender=1.0,
            flaw="injury_ignored",
            defect_only=True,
        ),
    ),
    "sexual": (
        _V("20A", 50, "SEXUAL OFFENCE", ("sexual",), wrong="88E", offender=0.5),
        _V("17A", 10, "SEXUAL OFFENCE", ("sexual",), offender=0.5),
        _V("22A", 8, "SEXUAL OFFENCE", ("sexual",), wrong="20A", offender=0.7),
        _V("88E", 22, "SEXUAL OFFENCE", ("sexual",), offender=0.3),
        _V("88A", 5, "SEXUAL OFFENCE", ("sexual", "child"), offender=0.8),
        _V("20B", 5, "SEXUAL OFFENCE", ("sexual", "child"), offender=0.8),
    ),
    "rape": (
        _V("19C", 78, "RAPE", ("rape", "sexual"), offender=0.8),
        _V("19F", 12, "RAPE", ("rape", "sexual"), offender=0.8),
        _V("19D", 10, "RAPE", ("rape", "sexual", "child"), offender=0.85),
    ),
    "conduct": (
        _V("8L", 45, "HARASSMENT", ("course_of_conduct",), offender=0.9),
        _V("8R", 35, "MALICIOUS COMMS", offender=0.7),
        _V("8Q", 20, "STALKING", ("course_of_conduct",), wrong="8L", offender=0.9),
    ),
    "public_order": (
        _V("9A", 85, "PUBLIC ORDER", kind="state", offender=0.6),
        _V("9B", 15, "PUBLIC ORDER", ("hate",), kind="state", offender=0.5),
    ),
}

# Share of crime-disclosing incidents by category: roughly the national mix of police
# recorded crime excluding fraud (theft and violence lead, rape about 1 in 75).
_CATEGORY_WEIGHTS: Final = {
    "theft": 29.0,
    "violence": 22.5,
    "domestic_abuse": 14.0,
    "criminal_damage": 10.0,
    "conduct": 8.0,
    "public_order": 6.0,
    "burglary": 4.5,
    "sexual": 3.0,
    "robbery": 1.7,
    "rape": 1.3,
}

_MISCLASSIFIABLE: Final = frozenset(c for c, vs in _CATALOGUE.items() if any(v.wrong for v in vs))
_MULTI_VICTIM: Final = frozenset(c for c, vs in _CATALOGUE.items() if any(v.multi for v in vs))

# Qualifiers that describe the incident without changing what must be recorded.
_EXTRA_QUALIFIERS: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "violence": (("alcohol", 0.25), ("weapon", 0.04)),
    "domestic_abuse": (("child", 0.2), ("alcohol", 0.2), ("vulnerable", 0.1)),
    "robbery": (("weapon", 0.3),),
    "sexual": (("vulnerable", 0.15),),
    "rape": (("vulnerable", 0.2),),
    "conduct": (("vulnerable", 0.1),),
    "public_order": (("alcohol", 0.4),),
    "non_crime": (("mental_health", 0.2), ("vulnerable", 0.15), ("alcohol", 0.1)),
}

_CHANNELS: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "routine": (
        ("101", 35),
        ("online", 25),
        ("999", 20),
        ("officer", 8),
        ("front_counter", 5),
        ("partner_referral", 4),
        ("other", 3),
    ),
    "urgent": (
        ("999", 55),
        ("101", 25),
        ("online", 5),
        ("officer", 8),
        ("partner_referral", 5),
        ("front_counter", 2),
    ),
    "sensitive": (
        ("101", 30),
        ("partner_referral", 30),
        ("999", 25),
        ("front_counter", 10),
        ("online", 5),
    ),
    "witnessed": (("officer", 40), ("999", 40), ("101", 20)),
}
_CHANNEL_PROFILE: Final = {
    "violence": "urgent",
    "domestic_abuse": "urgent",
    "robbery": "urgent",
    "burglary": "urgent",
    "sexual": "sensitive",
    "rape": "sensitive",
    "public_order": "witnessed",
}

_NON_CRIME_OPENINGS: Final = (
    ("ASB", 25.0),
    ("CONCERN FOR WELFARE", 25.0),
    ("SUSPICIOUS CIRCS", 15.0),
    ("DOMESTIC", 10.0),
    ("CIVIL DISPUTE", 10.0),
    ("ROAD RELATED", 10.0),
    ("ALARM", 5.0),
)

_RECORDERS: Final = (
    ("crime_bureau", 45.0),
    ("officer", 45.0),
    ("ddm", 7.0),
    ("fcr", 1.0),
    ("other", 2.0),
)
_SENSITIVE_RECORDERS: Final = (("ddm", 40.0), ("officer", 40.0), ("crime_bureau", 20.0))

# An upward reclassification that new information can justify.
_UPGRADES: Final = {"105A": "8N", "105B": "8P", "49": "39", "8R": "8L"}

_SOURCE: Final = {
    "incident.reported": "storm",
    "incident.updated": "storm",
    "incident.closed": "storm",
    "crime.recorded": "niche",
    "crime.reclassified": "niche",
    "crime.cancelled": "niche",
    "n100.recorded": "niche",
}

_RESTRICTED_FAMILIES: Final = frozenset({"violence", "sexual", "robbery"})

# Relative demand by hour of day (UTC), averaging 1: quiet before dawn, busiest early evening.
_HOURLY: Final = (
    0.95, 0.8, 0.65, 0.5, 0.42, 0.4, 0.48, 0.65, 0.85, 1.0, 1.08, 1.13,
    1.18, 1.2, 1.22, 1.28, 1.35, 1.42, 1.45, 1.4, 1.32, 1.22, 1.1, 1.0,
)  # fmt: skip
_HOURLY_MEAN: Final = math.fsum(_HOURLY) / len(_HOURLY)
_DEMAND: Final = tuple(h / _HOURLY_MEAN for h in _HOURLY)
_PEAK: Final = max(_DEMAND)


# --- small random helpers ---------------------------------------------------------------


class _Pick(Generic[T]):
    """A weighted choice drawn with one ``random()`` call, for speed and determinism."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        if not pairs:
            raise ValueError("nothing to choose from")
        self.items = [item for item, _ in pairs]
        self.cum: list[float] = []
        running = 0.0
        for _, weight in pairs:
            running += weight
            self.cum.append(running)
        self.total = running

    def __call__(self, rng: random.Random) -> T:
        i = bisect.bisect_right(self.cum, rng.random() * self.total)
        return self.items[min(i, len(self.items) - 1)]


def _hours(rng: random.Random, low: float, high: float) -> int:
    """A uniform delay in whole seconds between ``low`` and ``high`` hours."""
    return int((low + (high - low) * rng.random()) * HOUR)


def _timely_delay(rng: random.Random) -> int:
    """Delay of a correct recording: mostly within hours, a tail up to 20 hours."""
    r = rng.random()
    if r < 0.7:
        return _hours(rng, 0.5, 6)
    if r < 0.9:
        return _hours(rng, 6, 12)
    return _hours(rng, 12, 20)


def _ref(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.getrandbits(64):016x}"


_TWO_DIGITS: Final = tuple(f"{i:02d}" for i in range(60))
_CLOCK: Final = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))


@cache
def _day_prefix(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))


def _timestamp(seconds: int) -> str:
    """RFC 3339 in UTC, the one spelling the contract uses (whole seconds, ``Z``).

    Assembled from cached pieces because it runs for every event and ``strftime`` or a
    formatted f-string would be the largest single cost of generation.
    """
    day, rest = divmod(seconds, 86400)
    minute, second = divmod(rest, 60)
    return _day_prefix(day) + _CLOCK[minute] + _TWO_DIGITS[second] + "Z"


# --- offences ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tables:
    """Pickers, and the family of every code the catalogue uses."""

    family: dict[str, str]
    categories: dict[str | None, _Pick[str]]
    variants: dict[tuple[str, str], _Pick[_Variant]]
    channels: dict[str, _Pick[str]]
    non_crime: _Pick[str]
    recorders: _Pick[str]
    sensitive_recorders: _Pick[str]


@cache
def _tables() -> _Tables:
    """Build the pickers once, refusing a catalogue the offence table contradicts."""
    return _Tables(
        family=_checked_families(load_offences()),
        categories=_category_pickers(),
        variants=_variant_pickers(),
        channels={name: _Pick(pairs) for name, pairs in _CHANNELS.items()},
        non_crime=_Pick(_NON_CRIME_OPENINGS),
        recorders=_Pick(_RECORDERS),
        sensitive_recorders=_Pick(_SENSITIVE_RECORDERS),
    )


def _checked_families(table: OffenceTable) -> dict[str, str]:
    """Check the catalogue against the table the rules use; return each code's family.

    A planted misclassification is only one if the rules' own seriousness order ranks
    the wrong class below the right one, and a lesser offence or an upgrade only stays
    benign if it is really lesser or greater. Checking against the table, rather than a
    hand-written order, keeps the planted errors honest if the table changes.
    """
    pairs = [(v.record, v.wrong) for vs in _CATALOGUE.values() for v in vs if v.wrong]
    pairs += [(v.record, v.lesser) for vs in _CATALOGUE.values() for v in vs if v.lesser]
    pairs += [(up, code) for code, up in _UPGRADES.items()]
    for greater, lesser in pairs:
        if table.more_serious(greater, lesser) is not True:
            raise RuntimeError(f"offence table does not rank {greater} above {lesser}")
    codes = {c for vs in _CATALOGUE.values() for v in vs for c in (v.code, v.correct) if c}
    codes |= {c for pair in pairs for c in pair}
    family: dict[str, str] = {}
    for code in sorted(codes):
        offence = table.get(code)
        if offence is None:
            raise RuntimeError(f"offence {code} is not in the offence table")
        family[code] = offence.family
    return family


def _category_pickers() -> dict[str | None, _Pick[str]]:
    eligible: dict[str | None, frozenset[str]] = {
        None: frozenset(_CATEGORY_WEIGHTS),
        "unrecorded": frozenset(_CATEGORY_WEIGHTS),
        "late": frozenset(_CATEGORY_WEIGHTS),
        "misclassified": _MISCLASSIFIABLE,
        "undercounted": _MULTI_VICTIM,
        "wrongly_cancelled": frozenset(_CATEGORY_WEIGHTS),
    }
    return {
        defect: _Pick([(c, w) for c, w in _CATEGORY_WEIGHTS.items() if c in cats])
        for defect, cats in eligible.items()
    }


def _variant_pickers() -> dict[tuple[str, str], _Pick[_Variant]]:
    out: dict[tuple[str, str], _Pick[_Variant]] = {}
    for category, variants in _CATALOGUE.items():
        out[(category, "normal")] = _Pick([(v, v.weight) for v in variants if not v.defect_only])
        if category in _MISCLASSIFIABLE:
            out[(category, "misclassified")] = _Pick([(v, v.weight) for v in variants if v.wrong])
        if category in _MULTI_VICTIM:
            out[(category, "undercounted")] = _Pick([(v, v.weight) for v in variants if v.multi])
    return out


# --- the scene: what an incident discloses ------------------------------------------------


@dataclass(slots=True)
class _Disclosure:
    disclosure_id: str
    code: str
    victim_ref: str | None
    offender_ref: str | None
    contrary: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "disclosure_id": self.disclosure_id,
            "offence_code": self.code,
            "victim_ref": self.victim_ref,
            "offender_ref": self.offender_ref,
            "contrary_evidence": self.contrary,
        }


@dataclass(slots=True)
class _Subject:
    """One crime owed: a victim, or a state-based disclosure; its clock and outcome."""

    victim_ref: str | None
    disclosures: list[_Disclosure]
    correct: str
    start: int
    recordable: bool = True
    first_record: int | None = None
    covered: bool = False


@dataclass(slots=True)
class _Update:
    at: int
    qualifiers: list[str] = field(default_factory=list)
    victims: list[tuple[str, str]] = field(default_factory=list)
    disclosures: list[_Disclosure] = field(default_factory=list)


@dataclass(slots=True)
class _Scene:
    category: str
    variant: _Variant | None
    channel: str
    opening: str
    qualifiers: list[str]
    victims: list[tuple[str, str]]
    disclosures: list[_Disclosure]
    subjects: list[_Subject]
    offender: str | None
    updates: list[_Update] = field(default_factory=list)
    complications: list[str] = field(default_factory=list)
    detail: str | None = None


def _qualifiers(rng: random.Random, category: str, variant: _Variant | None) -> list[str]:
    out: list[str] = ["domestic_abuse"] if category == "domestic_abuse" else []
    for q in variant.qualifiers if variant else ():
        out.append(("hate_race" if rng.random() < 0.8 else "hate_religion") if q == "hate" else q)
    if variant is not None and variant.maybe_former and rng.random() < 0.4:
        out.append("former_partner")
    for q, p in _EXTRA_QUALIFIERS.get(category, ()):
        if rng.random() < p:
            out.append(q)
    return out


def _victim_count(rng: random.Random, variant: _Variant, defect: str | None) -> int:
    if defect == "undercounted":
        return 2 if rng.random() < 0.7 else 3
    if not variant.multi:
        return 1
    r = rng.random()
    return 1 if r < 0.85 else (2 if r < 0.97 else 3)


def _compose(rng: random.Random, t: _Tables, t0: int, category: str, defect: str | None) -> _Scene:
    """Draw what the report discloses: victims, offences, qualifiers, later updates."""
    pool = defect if defect in ("misclassified", "undercounted") else "normal"
    variant = t.variants[(category, pool)](rng)
    while variant.flaw == "former_partner_stalking_ignored" and t0 < STALKING_RULE_STARTS:
        # Before the 2020 rule, harassment by a former partner was rightly recorded as 8L:
        # that variant would be no defect at all.
        variant = t.variants[(category, pool)](rng)
    offender = _ref(rng, "O") if rng.random() < variant.offender else None
    scene = _Scene(
        category=category,
        variant=variant,
        channel=t.channels[_CHANNEL_PROFILE.get(category, "routine")](rng),
        opening=variant.opening,
        qualifiers=_qualifiers(rng, category, variant),
        victims=[],
        disclosures=[],
        subjects=[],
        offender=offender,
    )
    count = _victim_count(rng, variant, defect)
    late_victim = count > 1 and rng.random() < 0.3
    for i in range(count):
        if late_victim and i == count - 1:
            _add_victim_later(rng, scene, t0)
        else:
            _add_subject(rng, scene, t0, at_report=True)
    if not late_victim and rng.random() < 0.1:
        _add_detail_later(rng, scene, t0)
    if variant.note:
        scene.complications.append(variant.note)
    return scene


def _add_subject(rng: random.Random, scene: _Scene, at: int, *, at_report: bool) -> _Subject:
    variant = scene.variant
    assert variant is not None
    number = len(scene.disclosures) + sum(len(u.disclosures) for u in scene.updates) + 1
    victim = None if variant.kind == "state" else _ref(rng, "V")
    disclosure = _Disclosure(f"D{number}", variant.code, victim, scene.offender)
    subject = _Subject(victim, [disclosure], variant.record, at)
    scene.subjects.append(subject)
    if at_report:
        scene.disclosures.append(disclosure)
        if victim is not None:
            scene.victims.append((victim, variant.kind))
    return subject


def _add_victim_later(rng: random.Random, scene: _Scene, t0: int) -> None:
    """A further victim found by the attending officer: their own clock starts then."""
    at = t0 + _hours(rng, 0.5, 8)
    subject = _add_subject(rng, scene, at, at_report=False)
    assert subject.victim_ref is not None and scene.variant is not None
    update = _Update(at, victims=[(subject.victim_ref, scene.variant.kind)])
    update.disclosures.extend(subject.disclosures)
    scene.updates.append(update)
    scene.complications.append("victim_added")


def _add_detail_later(rng: random.Random, scene: _Scene, t0: int) -> None:
    """More information that changes nothing owed: a lesser offence or a qualifier.

    Under the Principal Crime Rule a lesser offence against the same victim by the same
    offender adds no crime, so the stream tests that the engine does not ask for one.
    """
    variant = scene.variant
    assert variant is not None
    update = _Update(t0 + _hours(rng, 0.5, 8))
    first = scene.subjects[0]
    if variant.lesser and first.victim_ref is not None:
        number = len(scene.disclosures) + 1
        lesser = _Disclosure(f"D{number}", variant.lesser, first.victim_ref, scene.offender)
        update.disclosures.append(lesser)
        first.disclosures.append(lesser)
        scene.complications.append("lesser_offence_added")
    else:
        update.qualifiers.append(rng.choice(("vulnerable", "alcohol", "mental_health")))
    scene.updates.append(update)


# --- the plan: events an incident produces ------------------------------------------------


@dataclass(slots=True)
class _Crime:
    crime_id: str
    code: str
    victim_ref: str | None
    at: int
    cancelled: bool = False


class _Incident:
    """Collects one incident's events in event time, then gives them their envelope."""

    def __init__(self, incident_id: str, t0: int, tables: _Tables) -> None:
        self.incident_id = incident_id
        self.t0 = t0
        self.tables = tables
        self.events: list[tuple[int, int, str, dict[str, Any]]] = []
        self.crimes: list[_Crime] = []
        self.suffix = incident_id.removeprefix("INC-")

    def emit(self, at: int, event_type: str, fields: dict[str, Any]) -> None:
        self.events.append((at, len(self.events), event_type, fields))

    def report(self, scene: _Scene) -> None:
        self.emit(
            self.t0,
            "incident.reported",
            {
                "reported_at": _timestamp(self.t0),
                "channel": scene.channel,
                "opening_code": scene.opening,
                "qualifiers": scene.qualifiers,
                "victims": [{"victim_ref": r, "kind": k} for r, k in scene.victims],
                "disclosures": [d.as_json() for d in scene.disclosures],
            },
        )
        for u in scene.updates:
            self.emit(
                u.at,
                "incident.updated",
                {
                    "qualifiers_added": u.qualifiers,
                    "victims_added": [{"victim_ref": r, "kind": k} for r, k in u.victims],
                    "disclosures": [d.as_json() for d in u.disclosures],
                },
            )

    def record(
        self, rng: random.Random, at: int, code: str, victim: str | None, offender: str | None
    ) -> _Crime:
        crime = _Crime(f"CR-{self.suffix}-{len(self.crimes) + 1}", code, victim, at)
        self.crimes.append(crime)
        sensitive = self.tables.family.get(code) == "sexual"
        recorders = self.tables.sensitive_recorders if sensitive else self.tables.recorders
        self.emit(
            at,
            "crime.recorded",
            {
                "crime_id": crime.crime_id,
                "offence_code": code,
                "victim_ref": victim,
                "offender_refs": [offender] if offender else [],
                "recorded_by_role": recorders(rng),
            },
        )
        return crime

    def cancel(
        self,
        crime: _Crime,
        at: int,
        reason: str,
        *,
        avi: str | None,
        role: str,
        informed: bool | None,
    ) -> None:
        crime.cancelled = True
        self.emit(
            at,
            "crime.cancelled",
            {
                "crime_id": crime.crime_id,
                "reason": reason,
                "avi": avi,
                "authoriser_role": role,
                "victim_informed": informed,
            },
        )

    def close(self, at: int, closure_type: str, closing_code: str, rationale: str | None) -> None:
        self.emit(
            at,
            "incident.closed",
            {"closure_type": closure_type, "closing_code": closing_code, "rationale": rationale},
        )

    def last_time(self) -> int:
        return max(e[0] for e in self.events)

    def finish(self) -> list[tuple[int, dict[str, Any]]]:
        """Envelope every event, numbered in event-time order."""
        out: list[tuple[int, dict[str, Any]]] = []
        prefix = f"E-{self.incident_id}-"
        incident_id = self.incident_id
        for n, (at, _, event_type, fields) in enumerate(sorted(self.events), start=1):
            event: dict[str, Any] = {
                "schema_version": 1,
                "event_id": prefix + str(n),
                "event_type": event_type,
                "incident_id": incident_id,
                "occurred_at": _timestamp(at),
                "source": _SOURCE[event_type],
                **fields,
            }
            out.append((at, event))
        return out


def _record_subjects(
    rng: random.Random,
    inc: _Incident,
    scene: _Scene,
    delay: int,
    *,
    skip: _Subject | None = None,
    codes: dict[int, str] | None = None,
) -> dict[int, _Crime]:
    """Record a crime for each recordable subject ``delay`` after its clock starts.

    Subjects known at the same moment are recorded together, minutes apart, as a crime
    bureau works through one incident.
    """
    out: dict[int, _Crime] = {}
    batch: dict[int, int] = {}
    for i, s in enumerate(scene.subjects):
        if not s.recordable or s is skip:
            continue
        at = batch[s.start] + rng.randint(60, 900) if s.start in batch else s.start + delay
        batch[s.start] = at
        code = (codes or {}).get(i, s.correct)
        out[i] = inc.record(rng, at, code, s.victim_ref, scene.offender)
        s.first_record = at if s.first_record is None else min(s.first_record, at)
        s.covered = code == s.correct
    return out


def _close_as_crime(rng: random.Random, inc: _Incident) -> None:
    inc.close(inc.last_time() + _hours(rng, 0.25, 12), "crime", "CRIME RECORDED", None)


# --- outcomes: one per defect, and the clean path --------------------------------------


def _plan_clean(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """A correct outcome, sometimes with a complication that must not be flagged."""
    r = rng.random()
    if scene.category == "rape" and r < 0.2:
        _plan_n100(rng, inc, scene)
        return
    if r < 0.02 and scene.category != "rape":
        _contrary_evidence(rng, inc, scene)
    crimes = _record_subjects(rng, inc, scene, _timely_delay(rng))
    if 0 in crimes and 0.02 <= r < 0.035:
        _duplicate_cancelled(rng, inc, crimes[0])
        scene.complications.append("duplicate_cancelled")
    elif 0 in crimes and 0.035 <= r < 0.05 and crimes[0].code in _UPGRADES:
        _reclassify_up(rng, inc, crimes[0])
        scene.complications.append("reclassified_up")
    if crimes:
        _close_as_crime(rng, inc)
    else:
        inc.close(inc.last_time() + _hours(rng, 0.25, 4), "cri", "CRI", CONTRARY_RATIONALE)


def _plan_n100(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """A rape report resolved by an N100 with a rationale instead of a crime."""
    at = scene.subjects[0].start + _timely_delay(rng)
    rationale = rng.choice(N100_RATIONALES)
    inc.emit(at, "n100.recorded", {"n100_id": f"N100-{inc.suffix}", "rationale": rationale})
    inc.close(at + _hours(rng, 0.25, 6), "n100", "N100", rationale)
    for s in scene.subjects:
        s.first_record, s.covered = at, True
    scene.complications.append("n100")


def _contrary_evidence(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """Credible evidence that the first subject's offence did not happen arrives early."""
    subject = scene.subjects[0]
    at = max([inc.t0, *(u.at for u in scene.updates)]) + _hours(rng, 0.5, 3)
    replaced = [
        _Disclosure(d.disclosure_id, d.code, d.victim_ref, d.offender_ref, contrary=True)
        for d in subject.disclosures
    ]
    inc.emit(
        at,
        "incident.updated",
        {
            "qualifiers_added": [],
            "victims_added": [],
            "disclosures": [d.as_json() for d in replaced],
        },
    )
    subject.disclosures = replaced
    subject.recordable = False
    scene.complications.append("contrary_evidence")


def _duplicate_cancelled(rng: random.Random, inc: _Incident, original: _Crime) -> None:
    """The same crime recorded twice and the copy cancelled properly (C3, by a DDM)."""
    copy = inc.record(
        rng, original.at + _hours(rng, 0.2, 6), original.code, original.victim_ref, None
    )
    inc.cancel(copy, copy.at + _hours(rng, 2, 48), "C3", avi=None, role="ddm", informed=True)


def _reclassify_up(rng: random.Random, inc: _Incident, crime: _Crime) -> None:
    to_code = _UPGRADES[crime.code]
    inc.emit(
        crime.at + _hours(rng, 2, 72),
        "crime.reclassified",
        {
            "crime_id": crime.crime_id,
            "from_code": crime.code,
            "to_code": to_code,
            "rationale": UPGRADE_RATIONALE,
            "by_role": rng.choice(("crime_bureau", "ddm")),
        },
    )
    crime.code = to_code


def _plan_unrecorded(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """No crime at all: closed as no crime, as a CRI with no rationale, or left open."""
    r = rng.random()
    at = max([inc.t0, *(u.at for u in scene.updates)]) + _hours(rng, 0.5, 20)
    if r < 0.4:
        inc.close(at, "non_crime", "NO CRIME", NON_CRIME_RATIONALE)
        scene.detail = "closed_non_crime"
    elif r < 0.7:
        inc.close(at, "cri", "CRI", rng.choice(("", None)))
        scene.detail = "closed_cri_without_rationale"
    else:
        scene.detail = "left_open"


def _plan_late(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """Every subject recorded 25 to 72 hours after its clock started."""
    _record_subjects(rng, inc, scene, _hours(rng, 25, 72))
    _close_as_crime(rng, inc)
    scene.detail = "recorded_after_deadline"


def _plan_misclassified(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """The first victim's crime is recorded under the variant's less serious class."""
    assert scene.variant is not None
    _record_subjects(rng, inc, scene, _timely_delay(rng), codes={0: scene.variant.wrong})
    _close_as_crime(rng, inc)
    scene.detail = scene.variant.flaw


def _plan_undercounted(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """One victim of several gets no crime; a victim added later is the likeliest miss."""
    added_later = [s for s in scene.subjects if s.start > inc.t0]
    missed = added_later[0] if added_later else rng.choice(scene.subjects)
    _record_subjects(rng, inc, scene, _timely_delay(rng), skip=missed)
    _close_as_crime(rng, inc)
    scene.detail = "later_victim_missed" if added_later else "victim_missed"


def _plan_wrongly_cancelled(rng: random.Random, inc: _Incident, scene: _Scene) -> None:
    """Recorded in time, then cancelled one to four days later without valid grounds."""
    crimes = _record_subjects(rng, inc, scene, _timely_delay(rng))
    _close_as_crime(rng, inc)
    scene.detail = _cancel_wrongly(rng, inc, crimes[0])
    scene.subjects[0].covered = False


def _cancel_wrongly(rng: random.Random, inc: _Incident, crime: _Crime) -> str:
    """Cancel ``crime`` with one flaw the cancellation checks look for; name the flaw.

    Each way has exactly one flaw, so a finding can be traced to a single cause. An
    unauthorised cancellation is only a flaw for the families that need a DDM or the
    FCR, and an uninformed victim only where there is a victim.
    """
    at = crime.at + _hours(rng, 24, 96)
    ways = ["invalid_reason", "c2_without_avi"]
    if inc.tables.family.get(crime.code) in _RESTRICTED_FAMILIES:
        ways.append("unauthorised")
    if crime.victim_ref is not None:
        ways.append("victim_not_informed")
    way = rng.choice(ways)
    if way == "invalid_reason":
        reason = rng.choice(("C6", "victim withdrew support"))
        inc.cancel(crime, at, reason, avi=None, role="ddm", informed=True)
    elif way == "c2_without_avi":
        inc.cancel(crime, at, "C2", avi=None, role="ddm", informed=True)
    elif way == "unauthorised":
        role = rng.choice(("officer", "supervisor"))
        inc.cancel(crime, at, "C4", avi=None, role=role, informed=True)
    else:
        inc.cancel(crime, at, "C2", avi=VALID_AVI, role="ddm", informed=False)
    return way


_PLANS: Final = {
    None: _plan_clean,
    "unrecorded": _plan_unrecorded,
    "late": _plan_late,
    "misclassified": _plan_misclassified,
    "undercounted": _plan_undercounted,
    "wrongly_cancelled": _plan_wrongly_cancelled,
}


# --- non-crime incidents ----------------------------------------------------------------


def _non_crime(rng: random.Random, t: _Tables, inc: _Incident) -> _Scene:
    opening = t.non_crime(rng)
    qualifiers = _qualifiers(rng, "non_crime", None)
    if opening == "DOMESTIC":
        qualifiers.insert(0, "domestic_abuse")
    scene = _Scene(
        category="non_crime",
        variant=None,
        channel=t.channels["routine"](rng),
        opening=opening,
        qualifiers=qualifiers,
        victims=[],
        disclosures=[],
        subjects=[],
        offender=None,
    )
    inc.report(scene)
    inc.close(inc.t0 + _hours(rng, 0.25, 6), "non_crime", "NO CRIME", NON_CRIME_RATIONALE)
    return scene


# --- one incident, and the truth about it ----------------------------------------------


def _incident(
    rng: random.Random, t: _Tables, config: SimConfig, incident_id: str, t0: int
) -> tuple[list[tuple[int, dict[str, Any]]], Truth]:
    inc = _Incident(incident_id, t0, t)
    if rng.random() < config.non_crime_share:
        scene, defect = _non_crime(rng, t, inc), None
    else:
        defect = _draw_defect(rng, config.defects)
        scene = _compose(rng, t, t0, t.categories[defect](rng), defect)
        inc.report(scene)
        _PLANS[defect](rng, inc, scene)
    return inc.finish(), _truth(inc, scene, defect)


def _draw_defect(rng: random.Random, rates: DefectRates) -> str | None:
    r = rng.random()
    for name in DEFECTS:
        r -= getattr(rates, name)
        if r < 0:
            return name
    return None


def _truth(inc: _Incident, scene: _Scene, defect: str | None) -> Truth:
    victims = [r for r, _ in scene.victims] + [r for u in scene.updates for r, _ in u.victims]
    subjects = [s for s in scene.subjects if s.recordable]
    disclosed = [d.code for s in subjects for d in s.disclosures if not d.contrary]
    within: bool | None = None
    if subjects:
        within = all(
            s.first_record is not None and s.first_record - s.start <= DEADLINE for s in subjects
        )
    return Truth(
        incident_id=inc.incident_id,
        category=scene.category,
        defect=defect,
        victims=tuple(victims),
        disclosed_codes=tuple(disclosed),
        recorded_codes=tuple(c.code for c in inc.crimes if not c.cancelled),
        reported_at=datetime.fromtimestamp(inc.t0, UTC),
        recorded_within_24h=within,
        recordable_subjects=len(subjects),
        covered_subjects=sum(1 for s in subjects if s.covered),
        defect_detail=scene.detail,
        complications=tuple(scene.complications),
    )


# --- report times and incident numbers ---------------------------------------------------


class _ReportClock:
    """Report times from a Poisson process thinned by the daily demand curve."""

    def __init__(self, rng: random.Random, config: SimConfig) -> None:
        self.rng = rng
        self.t = config.start.timestamp()
        self.rate = _PEAK / config.mean_gap_seconds

    def next(self) -> int:
        while True:
            self.t += self.rng.expovariate(self.rate)
            hour = int(self.t // HOUR) % 24
            if self.rng.random() * _PEAK < _DEMAND[hour]:
                return math.floor(self.t)


class _IncidentNumbers:
    """``INC-<yyyymmdd>-<nnnnnn>``: a control-room log number, restarting each day."""

    def __init__(self) -> None:
        self.day = -1
        self.prefix = ""
        self.count = 0

    def next(self, t0: int) -> str:
        day = t0 // 86400
        if day != self.day:
            self.day, self.count = day, 0
            self.prefix = time.strftime("INC-%Y%m%d-", time.gmtime(t0))
        self.count += 1
        return f"{self.prefix}{self.count:06d}"


# --- public entry points ----------------------------------------------------------------


def generate(config: SimConfig) -> Iterator[tuple[dict[str, Any], Truth | None]]:
    """Yield ``(event, truth)`` in event-time order; ``truth`` only on an incident's report.

    Events of different incidents interleave as they would on the topic. Incidents are
    built lazily in report order and held in a heap only until no later incident can
    precede them, so memory stays bounded by the few days an incident stays active.
    Ties in time are broken by incident and then by event number.
    """
    tables = _tables()
    rng = random.Random(config.seed)
    clock = _ReportClock(rng, config)
    numbers = _IncidentNumbers()
    heap: list[tuple[int, int, int, dict[str, Any], Truth | None]] = []
    for seq in range(config.incidents):
        t0 = clock.next()
        while heap and heap[0][0] <= t0:
            _, _, _, event, truth = heapq.heappop(heap)
            yield event, truth
        events, truth = _incident(rng, tables, config, numbers.next(t0), t0)
        for n, (at, event) in enumerate(events):
            heapq.heappush(heap, (at, seq, n, event, truth if n == 0 else None))
    while heap:
        _, _, _, event, first = heapq.heappop(heap)
        yield event, first


def encode_event(event: dict[str, Any]) -> bytes:
    """One event as compact UTF-8 JSON, keys in order: a message value, or a JSONL line.

    Equal events always give equal bytes, so a publisher and a file agree exactly.
    """
    return pydantic_core.to_json(event)


def write_jsonl(
    config: SimConfig, path_or_file: str | os.PathLike[str] | IO[str] | IO[bytes]
) -> list[Truth]:
    """Write the stream as JSON Lines (one event a line) and return every incident's truth.

    A path is written in binary with bare line feeds, so the file depends on the config
    only, never on the platform; an open file may be text or binary.
    """
    if isinstance(path_or_file, str | os.PathLike):
        with open(path_or_file, "wb") as fh:
            return _write(config, fh.write)
    if isinstance(path_or_file, io.TextIOBase):
        text = cast(IO[str], path_or_file)
        return _write(config, lambda chunk: text.write(chunk.decode()))
    return _write(config, cast(IO[bytes], path_or_file).write)


def _write(config: SimConfig, write: Callable[[bytes], object]) -> list[Truth]:
    """Write in chunks: one call per event would cost more than the encoding."""
    truths: list[Truth] = []
    chunk: list[bytes] = []
    for event, truth in generate(config):
        chunk.append(encode_event(event))
        if truth is not None:
            truths.append(truth)
        if len(chunk) >= 4096:
            write(b"\n".join(chunk) + b"\n")
            chunk.clear()
    if chunk:
        write(b"\n".join(chunk) + b"\n")
    return truths
