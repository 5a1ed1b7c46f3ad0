"""Time and size settings of the engine, with the defaults the rules reference gives."""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Offsets are seconds after a subject's clock starts."""

    first_warning: float = 12 * HOUR
    second_warning: float = 20 * HOUR
    deadline: float = 24 * HOUR
    retention: float = 30 * DAY
    max_events_per_incident: int = 2_000
    # Disclosure versions plus victims an incident may hold. Every event re-evaluates the
    # whole incident, so without this bound one source could make each event of an
    # incident cost seconds and stall its partition.
    max_parties_per_incident: int = 400

    def __post_init__(self) -> None:
        if not 0 < self.first_warning < self.second_warning < self.deadline:
            raise ValueError("warnings must satisfy 0 < first < second < deadline")
        if self.retention <= 0:
            raise ValueError("retention must be positive")
        if self.max_events_per_incident < 1:
            raise ValueError("max_events_per_incident must be at least 1")
        if self.max_parties_per_incident < 1:
            raise ValueError("max_parties_per_incident must be at least 1")
