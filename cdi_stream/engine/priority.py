"""Flag priority: how soon a DDM should look.

Computed each time a flag is raised or revised, from the more serious of the subject's
most serious disclosed offence and the flag's expected code, so a victim of serious
violence is never queued behind a shoplifting classification query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cdi_stream.offences import OffenceTable

P1_GROUPS = frozenset(
    {
        "Violence against the person - Homicide",
        "Violence with injury",
        "Death or serious injury - unlawful driving",
    }
)
P2_GROUPS = frozenset({"Violence without injury", "Stalking and harassment"})
NOT_RECORDED = frozenset(
    {"crime_not_recorded", "additional_crime_not_recorded", "rape_not_resolved"}
)
_RANK = {"P1": 1, "P2": 2, "P3": 3}


def priority(
    *,
    floor: str,
    finding: str,
    codes: Iterable[str],
    rape: bool,
    qualifiers: Mapping[str, object],
    offences: OffenceTable,
    past_due: bool,
) -> str:
    """The most urgent of the rule's own priority and what the facts call for."""
    level = _RANK[floor]
    code = offences.most_serious([c for c in codes if c])
    offence = offences.get(code) if code else None
    if rape or "child" in qualifiers or "vulnerable" in qualifiers:
        level = 1
    if finding in NOT_RECORDED and past_due:
        level = 1
    if offence is not None:
        if offence.family == "sexual" or offence.group in P1_GROUPS:
            level = 1
        elif offence.group in P2_GROUPS or offence.family in ("robbery", "burglary"):
            level = min(level, 2)
    if "domestic_abuse" in qualifiers:
        level = min(level, 2)
    return f"P{level}"
