"""The message contract: what is accepted, what is refused and why, what is written."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cdi_stream.contract import (
    DEAD_LETTER_MAX_BYTES,
    KNOWN_QUALIFIERS,
    ContractError,
    CrimeCancelled,
    CrimeReclassified,
    CrimeRecorded,
    DdmDecision,
    DeadLetter,
    DeadLetterError,
    Disclosure,
    FlagChange,
    IncidentClosed,
    IncidentReported,
    IncidentUpdated,
    N100Recorded,
    format_timestamp,
    parse_decision,
    parse_incident_event,
)

T0 = "2026-11-25T10:00:00Z"
T0_DT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def envelope(event_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"evt-{event_type}",
        "event_type": event_type,
        "incident_id": "INC-1",
        "occurred_at": T0,
        "source": "storm",
        **fields,
    }


EXAMPLES: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "incident.reported": (
        IncidentReported,
        envelope(
            "incident.reported",
            reported_at="2026-11-25T09:58:00Z",
            channel="999",
            opening_code="DOMESTIC",
            qualifiers=["domestic_abuse", "injury"],
            victims=[{"victim_ref": "V1", "kind": "person"}],
            disclosures=[
                {
                    "disclosure_id": "D1",
                    "offence_code": "8N",
                    "victim_ref": "V1",
                    "offender_ref": "O1",
                    "disclosed_at": "2026-11-25T09:59:00Z",
                    "contrary_evidence": False,
                }
            ],
        ),
    ),
    "incident.updated": (
        IncidentUpdated,
        envelope(
            "incident.updated",
            qualifiers_added=["weapon"],
            victims_added=[{"victim_ref": "ORG1", "kind": "organisation"}],
            disclosures=[{"disclosure_id": "D2", "offence_code": "58A", "victim_ref": "ORG1"}],
        ),
    ),
    "incident.closed": (
        IncidentClosed,
        envelope("incident.closed", closure_type="cri", closing_code="CRI", rationale="NCRS"),
    ),
    "crime.recorded": (
        CrimeRecorded,
        envelope(
            "crime.recorded",
            source="niche",
            crime_id="CR1",
            offence_code="8N",
            victim_ref="V1",
            offender_refs=["O1"],
            recorded_by_role="crime_bureau",
        ),
    ),
    "crime.reclassified": (
        CrimeReclassified,
        envelope(
            "crime.reclassified",
            crime_id="CR1",
            from_code="8N",
            to_code="105A",
            rationale=None,
            by_role="officer",
        ),
    ),
    "crime.cancelled": (
        CrimeCancelled,
        envelope(
            "crime.cancelled",
            crime_id="CR1",
            reason="C2",
            avi="CCTV shows no assault",
            authoriser_role="ddm",
            victim_informed=True,
        ),
    ),
    "n100.recorded": (
        N100Recorded,
        envelope("n100.recorded", n100_id="N1", rationale="transferred to another force"),
    ),
}


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def contract_error(raw: bytes | str, **kwargs: Any) -> ContractError:
    with pytest.raises(ContractError) as info:
        parse_incident_event(raw, **kwargs)
    return info.value


# --- accepted --------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_every_event_type_parses_to_its_class(event_type: str) -> None:
    cls, doc = EXAMPLES[event_type]
    event = parse_incident_event(dumps(doc))
    assert type(event) is cls
    assert event.event_type == event_type
    assert event.incident_id == "INC-1"
    assert event.occurred_at == T0_DT


def test_fields_are_read_as_sent() -> None:
    event = parse_incident_event(dumps(EXAMPLES["incident.reported"][1]))
    assert isinstance(event, IncidentReported)
    assert event.reported_at == datetime(2026, 11, 25, 9, 58, tzinfo=UTC)
    assert event.channel == "999"
    assert event.qualifiers == ["domestic_abuse", "injury"]
    assert event.victims[0].victim_ref == "V1"
    (disclosure,) = event.disclosures
    assert disclosure.offence_code == "8N"
    assert disclosure.offender_ref == "O1"
    assert disclosure.disclosed_at == datetime(2026, 11, 25, 9, 59, tzinfo=UTC)
    assert disclosure.disclosed_at_given


def test_str_input_is_accepted() -> None:
    event = parse_incident_event(json.dumps(EXAMPLES["crime.recorded"][1]))
    assert isinstance(event, CrimeRecorded)
    assert event.offender_refs == ["O1"]


def test_unknown_fields_are_ignored() -> None:
    doc = {**EXAMPLES["crime.cancelled"][1], "force": "LEICS", "nested": {"a": [1]}}
    event = parse_incident_event(dumps(doc))
    assert isinstance(event, CrimeCancelled)
    assert "force" not in event.model_dump()


def test_unknown_qualifiers_are_kept() -> None:
    doc = envelope("incident.reported", channel="101", opening_code="X", qualifiers=["odd"])
    event = parse_incident_event(dumps(doc))
    assert isinstance(event, IncidentReported)
    assert event.qualifiers == ["odd"]
    assert "odd" not in KNOWN_QUALIFIERS
    assert "domestic_abuse" in KNOWN_QUALIFIERS
    assert len(KNOWN_QUALIFIERS) == 17


def test_unknown_cancellation_reason_is_accepted() -> None:
    doc = {**EXAMPLES["crime.cancelled"][1], "reason": "victim withdrew support"}
    event = parse_incident_event(dumps(doc))
    assert isinstance(event, CrimeCancelled)
    assert event.reason == "victim withdrew support"


def test_timestamps_are_normalised_to_utc() -> None:
    doc = {**EXAMPLES["incident.closed"][1], "occurred_at": "2026-11-25T11:30:00+01:30"}
    event = parse_incident_event(dumps(doc))
    assert event.occurred_at == T0_DT
    assert event.occurred_at.tzinfo is UTC


def test_events_are_frozen() -> None:
    event = parse_incident_event(dumps(EXAMPLES["crime.recorded"][1]))
    with pytest.raises(ValueError):
        event.incident_id = "other"  # type: ignore[misc]


# --- defaults --------------------------------------------------------------------------


def test_reported_at_defaults_to_occurred_at() -> None:
    doc = envelope("incident.reported", channel="online", opening_code="THEFT")
    event = parse_incident_event(dumps(doc))
    assert isinstance(event, IncidentReported)
    assert event.reported_at == event.occurred_at == T0_DT
    assert event.qualifiers == event.victims == event.disclosures == []


@pytest.mark.parametrize("event_type", ["incident.reported", "incident.updated"])
def test_disclosed_at_defaults_to_occurred_at_and_is_marked_not_given(event_type: str) -> None:
    doc = {
        **EXAMPLES[event_type][1],
        "disclosures": [
            {"disclosure_id": "D1", "offence_code": "8N"},
            {"disclosure_id": "D2", "offence_code": "8Q", "disclosed_at": "2026-11-24T10:00:00Z"},
        ],
    }
    event = parse_incident_event(dumps(doc))
    assert isinstance(event, IncidentReported | IncidentUpdated)
    first, second = event.disclosures
    assert first.disclosed_at == T0_DT
    assert not first.disclosed_at_given
    assert second.disclosed_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert second.disclosed_at_given
    assert first.contrary_evidence is False
    assert first.victim_ref is None


def test_given_flag_is_not_serialised_nor_settable_from_input() -> None:
    doc = {
        **EXAMPLES["incident.updated"][1],
        "disclosures": [{"disclosure_id": "D1", "offence_code": "8N", "disclosed_at_given": True}],
    }
    event = parse_incident_event(dumps(doc))
    assert isinstance(event, IncidentUpdated)
    assert not event.disclosures[0].disclosed_at_given
    assert "disclosed_at_given" not in event.model_dump_json()


def test_python_construction_fills_a_copy_and_leaves_the_callers_disclosure() -> None:
    mine = Disclosure(disclosure_id="D1", offence_code="8N")
    event = IncidentUpdated(
        schema_version=1,
        event_id="e",
        event_type="incident.updated",
        incident_id="I",
        occurred_at=T0_DT,
        disclosures=[mine],
    )
    assert event.disclosures[0].disclosed_at == T0_DT
    assert not event.disclosures[0].disclosed_at_given
    assert mine.disclosed_at is None


def test_explicit_null_disclosed_at_is_refused() -> None:
    doc = {
        **EXAMPLES["incident.updated"][1],
        "disclosures": [{"disclosure_id": "D1", "offence_code": "8N", "disclosed_at": None}],
    }
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("schema", "disclosures.0.disclosed_at")


# --- refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected_field"),
    [
        (("occurred_at",), "occurred_at"),
        (("reported_at",), "reported_at"),
        (("disclosures", 0, "disclosed_at"), "disclosures.0.disclosed_at"),
    ],
)
def test_naive_timestamp_is_refused_naming_the_field(
    path: tuple[str | int, ...], expected_field: str
) -> None:
    doc = json.loads(dumps(EXAMPLES["incident.reported"][1]))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = "2026-11-25T10:00:00"
    err = contract_error(dumps(doc))
    assert err.kind == "schema"
    assert err.field == expected_field
    assert err.message == "timestamp must include a timezone offset"


def test_numeric_timestamp_is_refused() -> None:
    doc = {**EXAMPLES["crime.recorded"][1], "occurred_at": 1764064800}
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("schema", "occurred_at")


@pytest.mark.parametrize(
    "text",
    [
        "1700000000",  # epoch seconds in a string
        "1700000000000",  # the same instant in milliseconds
        "0",
        "-1",
        "1.5e9",
        "2026-11-25T10:00Z",  # no seconds
        "2026-11-25T10:00:00+0100",  # no colon in the offset
        "2026-W48-3T10:00:00Z",
        "20261125T100000Z",
        "yesterday",
    ],
)
def test_a_timestamp_that_is_not_rfc_3339_is_refused(text: str) -> None:
    """The parser reads a string of digits as epoch time (seconds or milliseconds,
    whichever fits): a mix-up that would silently move a deadline."""
    doc = {**EXAMPLES["crime.recorded"][1], "occurred_at": text}
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("schema", "occurred_at")
    assert "RFC 3339" in err.message
    with pytest.raises(ContractError) as info:
        parse_decision(dumps({**DECISION, "decided_at": text}))
    assert (info.value.kind, info.value.field) == ("schema", "decided_at")


def test_a_leap_second_is_refused_saying_why() -> None:
    doc = {**EXAMPLES["crime.recorded"][1], "occurred_at": "2016-12-31T23:59:60Z"}
    err = contract_error(dumps(doc))
    assert (err.field, err.message) == (
        "occurred_at",
        "a leap second (:60) cannot be represented; send :59",
    )


@pytest.mark.parametrize(
    "text", ["2026-11-25T10:00:00Z", "2026-11-25t10:00:00z", "2026-11-25 10:00:00.25+01:00"]
)
def test_rfc_3339_spellings_are_accepted(text: str) -> None:
    doc = {**EXAMPLES["crime.recorded"][1], "occurred_at": text}
    assert parse_incident_event(dumps(doc)).occurred_at.tzinfo is UTC


def test_non_boolean_flag_is_refused() -> None:
    doc = {**EXAMPLES["crime.cancelled"][1], "victim_informed": "yes"}
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("schema", "victim_informed")


def test_several_errors_report_the_first_in_field_order_with_a_count() -> None:
    doc = envelope("incident.closed", occurred_at="2026-11-25T10:00:00", closure_type="nope")
    err = contract_error(dumps(doc))
    assert err.field == "occurred_at"
    assert err.message.startswith("timestamp must include a timezone offset")
    assert "3 errors" in err.message  # occurred_at, closure_type, closing_code


def test_missing_field_names_it() -> None:
    doc = dict(EXAMPLES["crime.recorded"][1])
    del doc["crime_id"]
    err = contract_error(dumps(doc))
    assert (err.kind, err.field, err.message) == ("schema", "crime_id", "field required")


def test_oversize_message_is_too_large() -> None:
    raw = dumps(EXAMPLES["crime.recorded"][1])
    assert parse_incident_event(raw, max_bytes=len(raw))
    assert contract_error(raw, max_bytes=len(raw) - 1).kind == "too_large"


def test_oversize_is_measured_in_utf8_bytes_for_str_input() -> None:
    doc = {**EXAMPLES["incident.closed"][1], "rationale": "é" * 10}
    text = json.dumps(doc, ensure_ascii=False)
    size = len(text.encode())
    assert parse_incident_event(text, max_bytes=size)
    assert contract_error(text, max_bytes=size - 1).kind == "too_large"


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"a": "\xff"}', b"", "\ud800"])
def test_invalid_json_or_utf8_is_not_json(raw: bytes | str) -> None:
    assert contract_error(raw).kind == "not_json"


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null"])
def test_json_that_is_not_an_object_is_not_object(raw: bytes) -> None:
    assert contract_error(raw).kind == "not_object"


@pytest.mark.parametrize("event_type", ["incident.deleted", "", 5, None])
def test_unknown_event_type(event_type: object) -> None:
    doc = {**EXAMPLES["crime.recorded"][1], "event_type": event_type}
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("unknown_event_type", "event_type")


def test_missing_event_type_is_a_schema_error() -> None:
    doc = dict(EXAMPLES["crime.recorded"][1])
    del doc["event_type"]
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("schema", "event_type")


@pytest.mark.parametrize("version", [2, 0])
def test_other_schema_version_is_unsupported(version: object) -> None:
    doc = {**EXAMPLES["crime.recorded"][1], "schema_version": version}
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("unsupported_schema_version", "schema_version")


@pytest.mark.parametrize("version", ["1", True, 1.5])
def test_a_schema_version_that_is_not_a_number_is_a_schema_error(version: object) -> None:
    """Not a newer format but a malformed field (``true`` used to pass as 1, and "1"
    was called unsupported while the message said 1 is supported)."""
    for event in (EXAMPLES["crime.recorded"][1], DECISION):
        doc = {**event, "schema_version": version}
        parse = parse_decision if event is DECISION else parse_incident_event
        with pytest.raises(ContractError) as info:
            parse(dumps(doc))
        assert (info.value.kind, info.value.field) == ("schema", "schema_version")


def test_version_is_checked_before_event_type() -> None:
    doc = {**EXAMPLES["crime.recorded"][1], "schema_version": 2, "event_type": "crime.merged"}
    assert contract_error(dumps(doc)).kind == "unsupported_schema_version"


def test_missing_schema_version_is_a_schema_error() -> None:
    doc = dict(EXAMPLES["crime.recorded"][1])
    del doc["schema_version"]
    err = contract_error(dumps(doc))
    assert (err.kind, err.field) == ("schema", "schema_version")


@pytest.mark.parametrize("value", ["officer ", "supervisor"])
def test_enum_values_are_exact(value: str) -> None:
    doc = {**EXAMPLES["crime.recorded"][1], "recorded_by_role": value}
    assert contract_error(dumps(doc)).field == "recorded_by_role"


# --- bounds: at the limit passes, one over fails ----------------------------------------


def _set(doc: dict[str, Any], field: str, value: Any) -> bytes:
    return dumps({**doc, field: value})


STRING_BOUNDS = [
    ("crime.recorded", "event_id", 128),
    ("crime.recorded", "incident_id", 64),
    ("crime.recorded", "source", 64),
    ("crime.recorded", "crime_id", 64),
    ("crime.recorded", "offence_code", 2000),
    ("incident.reported", "opening_code", 2000),
    ("incident.closed", "closing_code", 2000),
    ("incident.closed", "rationale", 20_000),
    ("crime.cancelled", "reason", 2000),
    ("crime.cancelled", "avi", 20_000),
]


@pytest.mark.parametrize(("event_type", "field", "limit"), STRING_BOUNDS)
def test_string_bounds(event_type: str, field: str, limit: int) -> None:
    doc = EXAMPLES[event_type][1]
    assert getattr(parse_incident_event(_set(doc, field, "x" * limit)), field) == "x" * limit
    err = contract_error(_set(doc, field, "x" * (limit + 1)))
    assert (err.kind, err.field) == ("schema", field)


def test_ids_must_not_be_empty() -> None:
    err = contract_error(_set(EXAMPLES["crime.recorded"][1], "event_id", ""))
    assert err.field == "event_id"


def _victim(i: int) -> dict[str, str]:
    return {"victim_ref": f"V{i}", "kind": "person"}


def _disclosure(i: int) -> dict[str, str]:
    return {"disclosure_id": f"D{i}", "offence_code": "8N"}


LIST_BOUNDS = [
    ("incident.reported", "victims", 50, _victim),
    ("incident.reported", "qualifiers", 32, lambda i: f"q{i}"),
    ("incident.reported", "disclosures", 100, _disclosure),
    ("incident.updated", "victims_added", 50, _victim),
    ("incident.updated", "qualifiers_added", 32, lambda i: f"q{i}"),
    ("crime.recorded", "offender_refs", 50, lambda i: f"O{i}"),
]


@pytest.mark.parametrize(("event_type", "field", "limit", "item"), LIST_BOUNDS)
def test_list_bounds(event_type: str, field: str, limit: int, item: Any) -> None:
    doc = EXAMPLES[event_type][1]
    event = parse_incident_event(_set(doc, field, [item(i) for i in range(limit)]))
    assert len(getattr(event, field)) == limit
    err = contract_error(_set(doc, field, [item(i) for i in range(limit + 1)]))
    assert (err.kind, err.field) == ("schema", field)


def test_nested_bound_names_the_nested_field() -> None:
    doc = {
        **EXAMPLES["incident.reported"][1],
        "victims": [{"victim_ref": "V1", "kind": "person"}, {"victim_ref": "V" * 65, "kind": "x"}],
    }
    err = contract_error(dumps(doc))
    assert err.field == "victims.1.victim_ref"
    assert "2 errors" in err.message


# --- DDM decisions -----------------------------------------------------------------------

DECISION = {
    "decision_id": "DEC1",
    "flag_id": "F-abc",
    "incident_id": "INC-1",
    "decision": "upheld",
    "reason": "crime now recorded as 8N",
    "decided_at": "2026-11-26T08:00:00+00:00",
    "ddm_ref": "DDM7",
}


def test_decision_parses() -> None:
    decision = parse_decision(dumps(DECISION))
    assert isinstance(decision, DdmDecision)
    assert decision.decision == "upheld"
    assert decision.decided_at == datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert decision.schema_version == 1


@pytest.mark.parametrize(
    ("raw", "kind", "field"),
    [
        (dumps({**DECISION, "decision": "maybe"}), "schema", "decision"),
        (dumps({**DECISION, "decided_at": "2026-11-26T08:00:00"}), "schema", "decided_at"),
        (dumps({**DECISION, "schema_version": 2}), "unsupported_schema_version", "schema_version"),
        (b"[1]", "not_object", None),
        (b"{", "not_json", None),
    ],
)
def test_decision_errors(raw: bytes, kind: str, field: str | None) -> None:
    with pytest.raises(ContractError) as info:
        parse_decision(raw)
    assert (info.value.kind, info.value.field) == (kind, field)


def test_decision_too_large() -> None:
    raw = dumps(DECISION)
    with pytest.raises(ContractError) as info:
        parse_decision(raw, max_bytes=len(raw) - 1)
    assert info.value.kind == "too_large"


# --- outputs -----------------------------------------------------------------------------


def flag_change(**overrides: Any) -> FlagChange:
    fields: dict[str, Any] = {
        "flag_id": "F-abc",
        "revision": 1,
        "status": "open",
        "finding": "wrong_classification",
        "rule_id": "CLASS",
        "rule_title": "Classification must match the disclosure",
        "reference": "HOCR Section B",
        "edition": "2024-03",
        "priority": "P2",
        "incident_id": "INC-1",
        "victim_ref": "V1",
        "crime_ids": ["CR1"],
        "expected": {"offence_code": "8N", "count": 2, "aggravated": True},
        "observed": {"offence_code": "105A", "rationale": None},
        "due_at": datetime(2026, 11, 26, 11, tzinfo=timezone(timedelta(hours=1))),
        "event_time": T0_DT,
        "emitted_at": datetime(2026, 11, 25, 10, 0, 0, 250_000, tzinfo=UTC),
        "explanation": "Crime CR1 is 105A but the report disclosed 8N.",
        "evidence": ["evt-1", "evt-2"],
    }
    return FlagChange(**{**fields, **overrides})


def test_flag_change_json_is_compact_ordered_and_deterministic() -> None:
    raw = flag_change().to_json_bytes()
    assert raw == flag_change().to_json_bytes()
    assert raw.startswith(b'{"schema_version":1,"flag_id":"F-abc","revision":1,"status":"open"')
    assert b'"due_at":"2026-11-26T10:00:00Z"' in raw
    assert b'"event_time":"2026-11-25T10:00:00Z"' in raw
    assert b'"emitted_at":"2026-11-25T10:00:00.250000Z"' in raw
    assert b", " not in raw and b": " not in raw
    assert list(json.loads(raw)) == list(FlagChange.model_fields)


def test_flag_change_dict_key_order_does_not_depend_on_construction() -> None:
    a = flag_change(expected={"b": 1, "a": 2}).to_json_bytes()
    b = flag_change(expected={"a": 2, "b": 1}).to_json_bytes()
    assert a == b
    assert b'"expected":{"a":2,"b":1}' in a


def test_flag_change_round_trips() -> None:
    original = flag_change()
    again = FlagChange.model_validate_json(original.to_json_bytes())
    assert again == original
    assert again.expected["aggravated"] is True
    assert again.expected["count"] == 2
    assert again.to_json_bytes() == original.to_json_bytes()


def test_flag_change_revision_starts_at_one() -> None:
    with pytest.raises(ValueError):
        flag_change(revision=0)


def test_flag_change_refuses_unknown_finding() -> None:
    with pytest.raises(ValueError):
        flag_change(finding="something_else")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC), "2026-01-02T03:04:05.000007Z"),
        (datetime(2026, 1, 2, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2026-01-01T23:30:00Z"),
    ],
)
def test_format_timestamp(value: datetime, text: str) -> None:
    assert format_timestamp(value) == text


def test_contract_error_becomes_a_dead_letter() -> None:
    err = contract_error(b"[]")
    letter = DeadLetter.from_raw(
        key=b"INC-1",
        value=b"[]",
        error=err.to_dead_letter_error(),
        topic="cdi.incidents",
        partition=3,
        offset=42,
        received_at=T0_DT,
    )
    doc = json.loads(letter.to_json_bytes())
    assert doc["encoding"] == "utf-8"
    assert (doc["key"], doc["value"]) == ("INC-1", "[]")
    assert doc["error"] == {"kind": "not_object", "field": None, "message": err.message}
    assert (doc["topic"], doc["partition"], doc["offset"]) == ("cdi.incidents", 3, 42)
    assert doc["received_at"] == T0
    assert (doc["truncated"], doc["value_bytes"]) == (False, 2)
    assert doc["value_sha256"] == hashlib.sha256(b"[]").hexdigest()
    assert DeadLetter.model_validate_json(letter.to_json_bytes()) == letter


def dead_letter_of(value: bytes, key: bytes = b"INC-1") -> DeadLetter:
    return DeadLetter.from_raw(
        key=key,
        value=value,
        error=DeadLetterError(kind="too_large", message="big"),
        topic="cdi.incidents",
        partition=0,
        offset=0,
        received_at=T0_DT,
    )


@pytest.mark.parametrize(
    ("value", "whole"),
    [
        (b'"' * 1_000_000, False),  # every byte doubles as a JSON escape
        (b"\x01" * 300_000, False),  # control characters: six bytes each as \u0001
        (bytes(range(256)) * 4096, False),  # not UTF-8: base64, a third larger
        (b"\xff" * (13 << 20), False),  # far beyond any letter, even as the first try
        ("é".encode() * (9 << 20), False),  # 18 MiB of two-byte characters
        (b"a" * 899_000, True),
        # Regression: a run of continuation bytes was backed off whole, keeping nothing.
        (b"\x80" * 950_000, False),
    ],
)
def test_a_dead_letter_always_fits_a_kafka_record(value: bytes, whole: bool) -> None:
    letter = dead_letter_of(value)
    written = letter.to_json_bytes()
    assert len(written) <= DEAD_LETTER_MAX_BYTES
    back = DeadLetter.model_validate_json(written)
    assert value.startswith(back.raw_value()) and back.raw_value()
    assert back.truncated is not whole and (back.raw_value() == value) is whole
    assert (back.value_bytes, back.value_sha256) == (len(value), hashlib.sha256(value).hexdigest())
    assert back.raw_key() == b"INC-1"


def test_a_dead_letter_keeps_as_much_as_fits() -> None:
    value = b"a" * 905_000  # a few kilobytes too many
    letter = dead_letter_of(value)
    assert letter.truncated and len(letter.raw_value()) > 890_000
    binary = dead_letter_of(b"\x80" * 950_000)  # base64: three quarters of the room
    assert binary.encoding == "base64" and len(binary.raw_value()) > 600_000
    text = "é".encode() * 460_000  # cut between characters: still UTF-8, not base64
    cut = dead_letter_of(text)
    assert cut.encoding == "utf-8" and cut.truncated
    assert len(cut.to_json_bytes()) <= DEAD_LETTER_MAX_BYTES


def test_an_oversized_key_is_cut_and_says_so() -> None:
    letter = dead_letter_of(b"{}", key=b"k" * 10_000)
    assert letter.truncated and letter.raw_value() == b"{}"
    raw_key = letter.raw_key()
    assert raw_key is not None and 0 < len(raw_key) < 10_000


def test_a_dead_letter_written_before_sizes_were_kept_still_reads() -> None:
    old = dead_letter_of(b"[]").model_dump(mode="json")
    for name in ("truncated", "value_bytes", "value_sha256"):
        del old[name]
    back = DeadLetter.model_validate(old)
    assert (back.truncated, back.value_bytes, back.raw_value()) == (False, None, b"[]")


def test_dead_letter_keeps_non_utf8_bytes_exactly() -> None:
    letter = DeadLetter.from_raw(
        key=None,
        value=b"\xff\xfe{",
        error=DeadLetterError(kind="not_json", message="invalid unicode"),
        topic="replay.jsonl",
        partition=None,
        offset=None,
        received_at=T0_DT,
    )
    assert letter.encoding == "base64"
    assert letter.raw_value() == b"\xff\xfe{"
    assert letter.raw_key() is None


def test_contract_error_survives_pickling() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(ContractError("schema", "occurred_at", "bad")))
    assert (err.kind, err.field, err.message) == ("schema", "occurred_at", "bad")
    assert str(err) == "schema at occurred_at: bad"
