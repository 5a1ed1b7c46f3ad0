"""Where case state lives: an interface, a dictionary for replay and tests, and a
serialising variant that proves the state survives a trip through bytes.

The streaming service backs the same interface with a changelog-backed table, so the
engine never knows whether it runs in a replay or in a worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Protocol

from cdi_stream.engine.state import CaseState


class CaseStore(Protocol):
    """Per-incident case state by incident id."""

    def get(self, incident_id: str) -> CaseState | None: ...

    def put(self, state: CaseState) -> None: ...

    def delete(self, incident_id: str) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[str]: ...


class MemoryStore:
    """Objects in a dict: the fast path for replay."""

    def __init__(self) -> None:
        self._cases: dict[str, CaseState] = {}

    def get(self, incident_id: str) -> CaseState | None:
        return self._cases.get(incident_id)

    def put(self, state: CaseState) -> None:
        self._cases[state.incident_id] = state

    def delete(self, incident_id: str) -> None:
        self._cases.pop(incident_id, None)

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._cases))


class JsonStore:
    """State kept as JSON bytes, as a changelog-backed table keeps it.

    Every ``get`` decodes a fresh object, so any state the engine forgot to ``put``
    back, or any field that does not survive serialisation, shows up as a difference.
    """

    def __init__(self) -> None:
        self._cases: dict[str, bytes] = {}

    def get(self, incident_id: str) -> CaseState | None:
        raw = self._cases.get(incident_id)
        return None if raw is None else CaseState.from_dict(json.loads(raw))

    def put(self, state: CaseState) -> None:
        self._cases[state.incident_id] = json.dumps(state.to_dict(), sort_keys=True).encode()

    def delete(self, incident_id: str) -> None:
        self._cases.pop(incident_id, None)

    def size_of(self, incident_id: str) -> int:
        return len(self._cases.get(incident_id, b""))

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._cases))
