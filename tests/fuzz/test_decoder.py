"""The decoder is total: any input is either a valid model or a classified ContractError.

Nothing else may escape `parse_incident_event` or `parse_decision`: the stream worker
turns a ContractError into a dead letter and moves on, while any other exception would
stop the partition. A dead letter must itself be writable for every refused input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdi_stream.contract import (
    DEFAULT_MAX_BYTES,
    EVENT_TYPES,
    ContractError,
    IncidentReported,
    parse_decision,
    parse_incident_event,
)
from tests.fuzz import strategies as fz
from tests.fuzz.budget import budget
from tests.fuzz.checks import decode


def check_event(raw: bytes | str) -> None:
    event = decode(parse_incident_event, raw)
    if event is not None:
        assert event.event_type in EVENT_TYPES
        if isinstance(event, IncidentReported):
            assert event.reported_at is not None
        for d in getattr(event, "disclosures", []):
            assert d.disclosed_at is not None


@budget(600)
@given(fz.messages())
def test_any_incident_message_parses_or_is_a_classified_contract_error(raw: bytes | str) -> None:
    check_event(raw)


@budget(150)
@given(fz.events())
def test_every_generated_valid_event_parses(doc: dict[str, Any]) -> None:
    raw = fz.encode(doc)
    event = decode(parse_incident_event, raw)
    assert event is not None, parse_error(raw)
    assert event.event_id == doc["event_id"]


@budget(250)
@given(fz.messages(fz.decisions()))
def test_any_decision_message_parses_or_is_a_classified_contract_error(raw: bytes | str) -> None:
    decode(parse_decision, raw)


@budget(100)
@given(fz.decisions())
def test_every_generated_valid_decision_parses(doc: dict[str, Any]) -> None:
    raw = fz.encode(doc)
    decision = decode(parse_decision, raw)
    assert decision is not None, raw
    assert (decision.decision_id, decision.decision) == (doc["decision_id"], doc["decision"])


@budget(100)
@given(st.binary(min_size=1, max_size=64), st.integers(1, 64))
def test_size_limit_is_checked_before_parsing(raw: bytes, limit: int) -> None:
    if len(raw) > limit:
        with pytest.raises(ContractError) as caught:
            parse_incident_event(raw, max_bytes=limit)
        assert caught.value.kind == "too_large"
    else:
        try:
            parse_incident_event(raw, max_bytes=limit)
        except ContractError as exc:
            assert exc.kind != "too_large", exc


def parse_error(raw: bytes | str) -> str:
    try:
        parse_incident_event(raw)
    except ContractError as exc:
        return str(exc)
    return "parsed"


# --- named hostile inputs --------------------------------------------------------------

VALID: Final = fz.encode(
    {
        "schema_version": 1,
        "event_id": "E1",
        "event_type": "incident.reported",
        "incident_id": "INC-1",
        "occurred_at": "2026-01-05T08:00:00Z",
        "channel": "999",
        "opening_code": "ASSAULT",
        "disclosures": [{"disclosure_id": "D1", "offence_code": "8N", "victim_ref": "V1"}],
    }
)


def with_value(field: str, token: str) -> bytes:
    return fz._with_raw(json.loads(VALID), (field,), token)


DECISION: Final = fz.encode(
    {
        "decision_id": "DEC-1",
        "flag_id": "flag-0",
        "incident_id": "INC-1",
        "decision": "upheld",
        "reason": "",
        "decided_at": "2026-01-05T09:00:00Z",
        "ddm_ref": "DDM-1",
    }
)


@pytest.mark.parametrize(
    ("parse", "raw"),
    [
        (parse_incident_event, VALID),
        (parse_incident_event, VALID.decode()),
        (parse_decision, DECISION),
        (parse_decision, DECISION.decode()),
    ],
    ids=["event-bytes", "event-str", "decision-bytes", "decision-str"],
)
def test_a_message_that_parses_is_refused_one_byte_over_the_limit(
    parse: Callable[..., object], raw: bytes | str
) -> None:
    """Random bytes over the limit would mostly be refused anyway; a message that parses
    at its own size shows the limit alone refuses it."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    assert parse(raw, max_bytes=size) is not None
    with pytest.raises(ContractError) as caught:
        parse(raw, max_bytes=size - 1)
    assert caught.value.kind == "too_large"


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}"), ('{"victims":[', "]}")])
def test_deep_nesting_is_not_json_not_a_recursion_error(
    depth: int, opener: str, closer: str
) -> None:
    raw = (opener * depth + "1" + closer * depth).encode()
    for parse in (parse_incident_event, parse_decision):
        with pytest.raises(ContractError) as caught:
            parse(raw)
        assert caught.value.kind in {"not_json", "too_large"}


def test_deep_nesting_inside_a_valid_event_is_refused() -> None:
    raw = with_value("qualifiers", "[" * 100_000 + "]" * 100_000)
    assert decode(parse_incident_event, raw) is None


@pytest.mark.parametrize("token", fz.NUMBER_TOKENS)
@pytest.mark.parametrize("field", ["schema_version", "occurred_at", "event_id", "channel"])
def test_odd_numbers_are_classified(token: str, field: str) -> None:
    decode(parse_incident_event, with_value(field, token))


@pytest.mark.parametrize("token", fz.TIMESTAMP_TOKENS)
@pytest.mark.parametrize("field", ["occurred_at", "reported_at"])
def test_odd_timestamps_are_classified(token: str, field: str) -> None:
    decode(parse_incident_event, with_value(field, json.dumps(token)))


@pytest.mark.parametrize(
    "token",
    [
        '"0001-01-01T00:00:00+01:00"',
        '"9999-12-31T23:59:59-01:00"',
        '"0001-01-01T00:00:00Z"',
        '"9999-12-31T23:59:59Z"',
        '"1899-12-31T23:59:59.999999Z"',
        '"2100-01-01T00:00:00Z"',
        '"2099-12-31T23:59:59-00:01"',
    ],
)
def test_timestamps_outside_the_accepted_years_are_schema_errors(token: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_incident_event(with_value("occurred_at", token))
    assert (caught.value.kind, caught.value.field) == ("schema", "occurred_at")
    assert "1900 to 2099" in caught.value.message


@pytest.mark.parametrize(
    "token",
    ['"1900-01-01T00:00:00Z"', '"2099-12-31T23:59:59.999999Z"', '"2099-12-31T23:00:00-00:59"'],
)
def test_the_first_and_last_accepted_instants_parse(token: str) -> None:
    assert decode(parse_incident_event, with_value("occurred_at", token)) is not None


@pytest.mark.parametrize("token", fz.OTHER_TOKENS)
@pytest.mark.parametrize("field", ["incident_id", "disclosures", "qualifiers", "event_type"])
def test_wrong_types_are_classified(token: str, field: str) -> None:
    decode(parse_incident_event, with_value(field, token))


@pytest.mark.parametrize("key", ["sid", "id", "$s", "$and", "__proto__", "constructor"])
def test_reserved_keys_are_unknown_fields_and_ignored(key: str) -> None:
    doc = json.loads(VALID)
    doc[key] = {"sid": "0", "id": "x", "$s": 1}
    doc["disclosures"][0][key] = "x"
    event = parse_incident_event(fz.encode(doc))
    assert event == parse_incident_event(VALID)


@pytest.mark.parametrize("size", [2001, 65_536, DEFAULT_MAX_BYTES])
def test_huge_strings_are_classified(size: int) -> None:
    for field in ("event_id", "opening_code", "event_type", "unknown"):
        decode(parse_incident_event, with_value(field, json.dumps("x" * size)))


@pytest.mark.parametrize(("field", "count"), [("victims", 5_000), ("disclosures", 5_000)])
def test_thousands_of_victims_or_disclosures_are_a_schema_error(field: str, count: int) -> None:
    doc = json.loads(VALID)
    if field == "victims":
        doc[field] = [{"victim_ref": f"V{i}", "kind": "person"} for i in range(count)]
    else:
        doc[field] = [
            {"disclosure_id": f"D{i}", "offence_code": "8N", "victim_ref": f"V{i}"}
            for i in range(count)
        ]
    with pytest.raises(ContractError) as caught:
        parse_incident_event(fz.encode(doc))
    assert (caught.value.kind, caught.value.field) == ("schema", field)


@pytest.mark.parametrize(
    "raw",
    [
        fz.BOM + VALID,
        VALID.replace(b'"INC-1"', b'"INC-\xff"'),
        VALID.replace(b'"INC-1"', b'"INC-\xed\xa0\x80"'),  # a surrogate encoded as UTF-8
        VALID.replace(b'"INC-1"', b'"INC-\\ud800"'),  # a lone surrogate escape
        VALID.decode() + "\udcff",
        b"",
        b"\x00",
        b" ",
    ],
)
def test_bom_invalid_utf8_and_surrogates_are_refused(raw: bytes | str) -> None:
    assert decode(parse_incident_event, raw) is None


def test_escaped_surrogate_pair_is_one_character() -> None:
    event = parse_incident_event(VALID.replace(b'"INC-1"', b'"INC-\\ud83d\\ude42"'))
    assert event.incident_id == "INC-\U0001f642"


@pytest.mark.parametrize(
    "event_type", ["incident.deleted", "Incident.Reported", "x" * 10_000, 2**70]
)
def test_unknown_event_types_are_classified(event_type: object) -> None:
    with pytest.raises(ContractError) as caught:
        parse_incident_event(with_value("event_type", json.dumps(event_type)))
    assert caught.value.kind == "unknown_event_type"
    assert len(caught.value.message) < 200
