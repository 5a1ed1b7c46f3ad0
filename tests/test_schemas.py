"""The committed JSON Schema files must match the models they are generated from."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from cdi_stream.contract import ContractError, parse_incident_event
from cdi_stream.schemas import SCHEMA_FILES, check_schemas, export_schemas, render_schemas

REPO_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_repository_schemas_are_up_to_date() -> None:
    stale = check_schemas(REPO_SCHEMAS)
    assert not stale, (
        f"schemas/ is out of date for {', '.join(stale)}; "
        "regenerate with `cdi-stream schemas export` and commit the result"
    )


def test_export_writes_one_file_per_message(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(SCHEMA_FILES)
    assert sorted(SCHEMA_FILES) == [
        "ddm-decision.schema.json",
        "dead-letter.schema.json",
        "flag-change.schema.json",
        "incident-event.schema.json",
    ]
    assert check_schemas(tmp_path / "out") == []


def test_export_is_deterministic(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in export_schemas(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in export_schemas(tmp_path / "b")}
    assert first == second


def test_files_are_sorted_indented_and_end_with_newline() -> None:
    for name, text in render_schemas().items():
        doc = json.loads(text)
        assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert doc["$id"].startswith("urn:cdi-stream:schema:")
        assert doc["title"], name


def test_check_reports_missing_and_edited_files(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    (tmp_path / "ddm-decision.schema.json").unlink()
    edited = tmp_path / "flag-change.schema.json"
    edited.write_text(edited.read_text().replace('"P1"', '"P0"'))
    assert sorted(check_schemas(tmp_path)) == [
        "ddm-decision.schema.json",
        "flag-change.schema.json",
    ]


def test_event_schema_is_a_union_discriminated_by_event_type() -> None:
    doc = json.loads(render_schemas()["incident-event.schema.json"])
    assert doc["discriminator"]["propertyName"] == "event_type"
    assert sorted(doc["discriminator"]["mapping"]) == [
        "crime.cancelled",
        "crime.reclassified",
        "crime.recorded",
        "incident.closed",
        "incident.reported",
        "incident.updated",
        "n100.recorded",
    ]
    reported = doc["$defs"]["IncidentReported"]
    assert "reported_at" not in reported["required"]
    assert "default" not in reported["properties"]["reported_at"]
    assert reported["properties"]["occurred_at"]["format"] == "date-time"


def test_output_schemas_list_every_field_as_required() -> None:
    doc = json.loads(render_schemas()["flag-change.schema.json"])
    assert set(doc["required"]) == set(doc["properties"])


CRIME_RECORDED = {
    "schema_version": 1,
    "event_id": "evt-1",
    "event_type": "crime.recorded",
    "incident_id": "INC-1",
    "occurred_at": "2026-11-25T10:00:00Z",
    "crime_id": "CR-1",
    "offence_code": "8N",
    "victim_ref": "V-1",
    "recorded_by_role": "officer",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "2026-11-25T10:00:00Z"),
        ("occurred_at", "2026-11-25 10:00:00.5+01:00"),
        ("occurred_at", "2026-11-25T10:00:00"),  # naive
        ("occurred_at", "1700000000"),  # epoch seconds in a string
        ("occurred_at", "2026-11-25T10:00Z"),
        ("occurred_at", "yesterday"),
        ("occurred_at", "1850-01-01T00:00:00Z"),
        ("occurred_at", "2150-01-01T00:00:00Z"),
        ("occurred_at", "2026-13-01T10:00:00Z"),
        ("occurred_at", "2026-11-25T24:00:00Z"),
        ("occurred_at", "2026-11-25T10:00:00+24:00"),
        ("occurred_at", "2016-12-31T23:59:60Z"),  # a leap second
        ("schema_version", True),
        ("schema_version", "1"),
        ("schema_version", 2),
    ],
)
def test_the_event_schema_accepts_what_the_models_accept(field: str, value: object) -> None:
    """A producer that validates against ``schemas/`` must not send what the worker
    dead-letters, nor be refused what it would accept (``format`` alone is not checked
    by most validators, so timestamps carry a pattern too). What a pattern cannot say
    is left out here: the calendar (2026-02-30), and a final line break, which a
    validator reading ``$`` as Python does lets through."""
    doc = {**CRIME_RECORDED, field: value}
    schema = json.loads(render_schemas()["incident-event.schema.json"])
    by_schema = jsonschema.Draft202012Validator(schema).is_valid(doc)
    try:
        parse_incident_event(json.dumps(doc))
        by_model = True
    except ContractError:
        by_model = False
    assert by_schema == by_model
