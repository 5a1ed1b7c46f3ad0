"""Defects the fuzz tests found, each pinned by the input that showed it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import ValidationError

from cdi_stream.contract import (
    LATEST_TIMESTAMP,
    ContractError,
    DdmDecision,
    parse_decision,
    parse_incident_event,
)
from cdi_stream.engine import Engine
from cdi_stream.rules.book import RuleBook
from tests.fuzz.strategies import report as report_doc


def report(at: str, **fields: Any) -> bytes:
    return json.dumps(report_doc(at, **fields)).encode()


def decision(at: str) -> bytes:
    doc = {
        "decision_id": "DEC-1",
        "flag_id": "flag-1",
        "incident_id": "INC-1",
        "decision": "upheld",
        "reason": "r",
        "decided_at": at,
        "ddm_ref": "DDM-1",
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_offset_timestamp_outside_datetime_range_in_utc_raised_overflow_error(at: str) -> None:
    """The UTC conversion of a valid RFC 3339 time at either end of year 1..9999
    raised OverflowError out of the decoder instead of a ContractError."""
    for raw, field in (
        (report(at), "occurred_at"),
        (report("2026-01-05T08:00:00Z", reported_at=at), "reported_at"),
        (
            report(
                "2026-01-05T08:00:00Z",
                disclosures=[{"disclosure_id": "D1", "offence_code": "8N", "disclosed_at": at}],
            ),
            "disclosures.0.disclosed_at",
        ),
    ):
        with pytest.raises(ContractError) as caught:
            parse_incident_event(raw)
        assert (caught.value.kind, caught.value.field) == ("schema", field)
    with pytest.raises(ContractError) as caught:
        parse_decision(decision(at))
    assert (caught.value.kind, caught.value.field) == ("schema", "decided_at")


def test_offset_timestamp_outside_datetime_range_from_python_is_a_validation_error() -> None:
    """The same conversion from a Python `datetime` (the engine's own API)."""
    early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    doc = json.loads(decision("2026-01-05T08:00:00Z")) | {"decided_at": early}
    with pytest.raises(ValidationError, match="1900 to 2099"):
        DdmDecision.model_validate(doc)


def test_event_in_year_9999_crashed_the_engine_writing_its_deadline(book: RuleBook) -> None:
    """A report late in 9999 was accepted, and the engine then failed with ValueError
    ("year 10000 is out of range") writing its 24-hour deadline into the flag."""
    raw = report("9999-12-31T12:00:00Z")
    with pytest.raises(ContractError) as caught:
        parse_incident_event(raw)
    assert (caught.value.kind, caught.value.field) == ("schema", "occurred_at")
    latest = LATEST_TIMESTAMP.isoformat()
    engine = Engine(book)
    engine.apply(parse_incident_event(report(latest)))
    changes = engine.advance_to(LATEST_TIMESTAMP.timestamp() + 400 * 86400)
    assert [c.finding for c in changes if c.status == "open"]
    assert all(c.to_json_bytes() for c in changes)


def test_times_after_2106_lost_their_microseconds_in_the_engine(book: RuleBook) -> None:
    """The engine keeps times as float seconds: a report at 2999-12-31T22:59:59.999999Z
    got a deadline of 3000-01-01T23:00:00Z, a microsecond late. Such times are now
    refused, and within the accepted years every microsecond is kept."""
    with pytest.raises(ContractError):
        parse_incident_event(report("2999-12-31T22:59:59.999999Z"))
    start = LATEST_TIMESTAMP - dt.timedelta(hours=1)
    engine = Engine(book)
    engine.apply(parse_incident_event(report(start.isoformat())))
    changes = engine.advance_to(LATEST_TIMESTAMP.timestamp() + 400 * 86400)
    due = {c.due_at for c in changes if c.due_at is not None}
    assert due == {start + dt.timedelta(hours=24)}
    assert start.microsecond == 999999
