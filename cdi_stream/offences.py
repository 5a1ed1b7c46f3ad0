"""Home Office offence codes and a total order of seriousness.

The Principal Crime Rule needs "which of these offences is the most serious". The legal
order (HOCR Annex C, by maximum sentence) is not available as data, so the ONS Crime
Severity Score weight is used as the proxy, as the rules summary allows. A proxy must
still give one answer every time, so the order is total:

* weight descending, then code ascending (plain string order) to break ties. The tie
  break carries no legal meaning; it only makes replays deterministic. `more_serious`
  therefore reports equal weights as "neither", while `rank` and `most_serious` use the
  tie break.
* `8U` (controlling or coercive behaviour) has no weight in the source. It is given
  46.93, midway between stalking `8Q` (56.35) and racially or religiously aggravated
  harassment `8M` (37.51): it carries a 5-year maximum, like the aggravated form of
  stalking, so it belongs above harassment, but nothing in the source puts it above
  stalking. `weight_imputed` marks it so any output can say so.

Unknown codes are not errors: the table answers None and the caller decides, because an
unknown code in a live message must not stop the stream.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Final, Literal, NamedTuple

__all__ = [
    "AGGRAVATED",
    "CONDUCT_CODES",
    "IMPUTED_WEIGHTS",
    "Family",
    "Offence",
    "OffenceTable",
    "load_offences",
]

Family = Literal["violence", "sexual", "robbery", "burglary", "other"]

CONDUCT_CODES: Final = frozenset({"8Q", "8L", "8M", "8R", "8U"})

IMPUTED_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType({"8U": 46.93})

# Basic offence -> its racially or religiously aggravated class (HOCR Section B).
AGGRAVATED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "105A": "105B",
        "8N": "8P",
        "8L": "8M",
        "58A": "58J",
        "58B": "58J",
        "58C": "58J",
        "58D": "58J",
        "9A": "9B",
    }
)

_SEXUAL_GROUPS: Final = frozenset({"Sexual offences - Rape", "Other sexual offences"})


@dataclass(frozen=True, slots=True)
class Offence:
    """One Home Office offence code; built only by `load_offences`, which sets `rank`."""

    code: str
    name: str
    group: str
    victim_based: bool
    weight: float
    weight_imputed: bool
    rank: int
    family: Family
    is_rape: bool
    is_conduct: bool


def _family(group: str) -> Family:
    if group.startswith("Violence") or group == "Stalking and harassment":
        return "violence"
    if group in _SEXUAL_GROUPS:
        return "sexual"
    if group == "Robbery":
        return "robbery"
    if group == "Burglary":
        return "burglary"
    return "other"


class OffenceTable:
    """Offences by code, with seriousness comparisons that never raise on unknown codes."""

    # Plain per-code dicts of the fields the engine asks for on every evaluation: one
    # dict look-up instead of a look-up, a None check and an attribute read.
    __slots__ = ("_by_code", "_family", "_ordered", "_rank", "_weight")

    def __init__(self, offences: Iterable[Offence]) -> None:
        self._ordered = tuple(sorted(offences, key=lambda o: o.rank))
        self._by_code = {o.code: o for o in self._ordered}
        self._rank = {o.code: o.rank for o in self._ordered}
        self._weight = {o.code: o.weight for o in self._ordered}
        self._family: dict[str, Family] = {o.code: o.family for o in self._ordered}
        if len(self._by_code) != len(self._ordered):
            raise ValueError("duplicate offence code")

    def get(self, code: str) -> Offence | None:
        return self._by_code.get(code)

    def family(self, code: str) -> Family | None:
        """The family of `code`; None when the code is unknown."""
        return self._family.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __len__(self) -> int:
        return len(self._ordered)

    def __iter__(self) -> Iterator[Offence]:
        """Most serious first."""
        return iter(self._ordered)

    def more_serious(self, a: str, b: str) -> bool | None:
        """Whether `a` outweighs `b`; None when either is unknown (not comparable)."""
        wa, wb = self._weight.get(a), self._weight.get(b)
        if wa is None or wb is None:
            return None
        return wa > wb

    def most_serious(self, codes: Iterable[str]) -> str | None:
        """The first of `codes` in the total order; unknown codes are ignored."""
        rank = self._rank
        best: str | None = None
        best_rank = 1 << 30
        for code in codes:
            r = rank.get(code)
            if r is not None and r < best_rank:
                best, best_rank = code, r
        return best


class _Row(NamedTuple):
    code: str
    name: str
    group: str
    victim_based: bool
    weight: float
    weight_imputed: bool


def _read_rows(text: str) -> list[_Row]:
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        flag = row["victim_based"].strip()
        raw_weight = row["ons_css_weight"].strip()
        for code in row["ho_code"].split("/"):  # one source row may list several codes
            if flag not in ("Y", "N"):
                raise ValueError(f"offence {code}: victim_based must be Y or N, not {flag!r}")
            if raw_weight:
                weight, imputed = float(raw_weight), False
            elif code in IMPUTED_WEIGHTS:
                weight, imputed = IMPUTED_WEIGHTS[code], True
            else:
                raise ValueError(f"offence {code} has no weight and none is imputed")
            group = row["ho_offence_group"]
            rows.append(_Row(code, row["offence"], group, flag == "Y", weight, imputed))
    return rows


def _build(text: str) -> OffenceTable:
    rows = sorted(_read_rows(text), key=lambda r: (-r.weight, r.code))
    return OffenceTable(
        Offence(
            **r._asdict(),
            rank=rank,
            family=_family(r.group),
            is_rape=r.code.startswith("19"),
            is_conduct=r.code in CONDUCT_CODES,
        )
        for rank, r in enumerate(rows)
    )


@functools.lru_cache(maxsize=1)
def load_offences() -> OffenceTable:
    """The packaged offence table, read once per process."""
    text = resources.files("cdi_stream").joinpath("data/offences.csv").read_text("utf-8")
    return _build(text)
