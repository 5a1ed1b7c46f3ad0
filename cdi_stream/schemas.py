"""JSON Schema files for the contract, generated from the models.

The files in `schemas/` are what other systems validate against, so they must never
drift from the models: they are generated, never hand-edited, and `check_schemas` lets a
test fail when they are stale. Output is deterministic (sorted keys, fixed indent) so a
regenerated file only differs when the contract does.

Inputs are described as they are accepted (validation mode); outputs as they are
written (serialization mode), where every field is always present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import TypeAdapter

from cdi_stream.contract import DdmDecision, DeadLetter, FlagChange, IncidentEvent

__all__ = ["SCHEMA_FILES", "check_schemas", "export_schemas", "render_schemas"]

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_Mode = Literal["validation", "serialization"]

# file name -> (title, type, mode)
_SOURCES: Final[dict[str, tuple[str, Any, _Mode]]] = {
    "incident-event.schema.json": ("IncidentEvent", IncidentEvent, "validation"),
    "ddm-decision.schema.json": ("DdmDecision", DdmDecision, "validation"),
    "flag-change.schema.json": ("FlagChange", FlagChange, "serialization"),
    "dead-letter.schema.json": ("DeadLetter", DeadLetter, "serialization"),
}

SCHEMA_FILES: Final = tuple(_SOURCES)


def render_schemas() -> dict[str, str]:
    """The text of every schema file, keyed by file name."""
    rendered = {}
    for name, (title, type_, mode) in _SOURCES.items():
        schema: dict[str, Any] = TypeAdapter(type_).json_schema(mode=mode)
        schema["$schema"] = _DIALECT
        schema["$id"] = f"urn:cdi-stream:schema:{name.removesuffix('.schema.json')}:v1"
        schema["title"] = title
        rendered[name] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return rendered


def export_schemas(directory: Path) -> list[Path]:
    """Write every schema file into `directory` (created if needed); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def check_schemas(directory: Path) -> list[str]:
    """Names of the schema files in `directory` that are missing or out of date."""
    stale = []
    for name, text in render_schemas().items():
        path = directory / name
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            stale.append(name)
    return stale
