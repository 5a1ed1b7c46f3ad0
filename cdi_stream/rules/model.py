"""The shape of a rule document and of the editions file, as people write them in YAML."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from cdi_stream.contract import Finding, Priority
from cdi_stream.offences import load_offences

# A flag's ``expected``/``observed`` keys are bounded by the flag contract (FlagChange):
# 1-64 characters, at most 32 entries. A rule naming more, or longer, would make the
# engine publish flags that consumers must refuse. Values name a fact of the rule's
# scope, which are short identifiers.
_FlagKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
_FactName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
_MAX_FLAG_ENTRIES = 32


def _calendar_date(value: Any) -> Any:
    """Only a calendar date: YAML turns ``2000-01-01T00:00:00+05:00`` into a datetime and
    ``946684800`` into a number, and either would otherwise pass as some date."""
    if isinstance(value, dt.datetime):
        raise ValueError("a date such as 2018-04-01, without a time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    raise ValueError("a date such as 2018-04-01")


_Date = Annotated[dt.date, BeforeValidator(_calendar_date)]


class RuleDoc(BaseModel):
    """One rule as written. Unknown keys are errors: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$", max_length=40)
    title: str = Field(min_length=3, max_length=200)
    finding: Finding
    priority: Priority = Field(
        description="the least urgent priority this finding may have; the engine may raise it"
    )
    reference: str = Field(min_length=2, max_length=300)
    verify: bool = Field(
        default=False, description="the source is secondary and should be checked locally"
    )
    effective_from: _Date
    effective_to: _Date | None = None
    scope: Literal["subject", "victim", "reclassification", "cancellation", "closure"]
    when: dict[str, Any]
    resolved_when: dict[str, Any] | None = None
    raise_status: Literal["open", "resolved"] = "open"
    event_time: str
    due_at: str | None = Field(
        default=None,
        description="the context time the flag gives as its deadline; default the subject's",
    )
    expected: dict[_FlagKey, _FactName] = Field(default_factory=dict, max_length=_MAX_FLAG_ENTRIES)
    observed: dict[_FlagKey, _FactName] = Field(default_factory=dict, max_length=_MAX_FLAG_ENTRIES)
    explanation: str = Field(min_length=10, max_length=600)


class EditionDoc(BaseModel):
    """A period in which one set of counting rules applied, with the parameters that
    change how the engine computes facts in that period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")
    effective_from: _Date
    title: str = Field(min_length=3, max_length=200)
    conduct_in_addition: bool = False
    former_partner_stalking: bool = False


class EditionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Europe/London"
    conduct_codes: list[str] = Field(
        default_factory=lambda: ["8Q", "8L", "8M", "8R", "8U"], min_length=1, max_length=50
    )
    editions: list[EditionDoc] = Field(min_length=1)

    @field_validator("conduct_codes")
    @classmethod
    def _known_codes(cls, codes: list[str]) -> list[str]:
        # A typo ("8LL") would silently take a conduct crime out of the rules.
        offences = load_offences()
        unknown = [c for c in codes if c not in offences]
        if unknown:
            raise ValueError(f"not Home Office offence codes: {', '.join(map(repr, unknown))}")
        if len(set(codes)) != len(codes):
            raise ValueError("a code is listed twice")
        return codes
