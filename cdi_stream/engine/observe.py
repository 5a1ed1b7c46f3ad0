"""What the engine tells an observer as it works, for figures that flags do not carry.

Flags say what went wrong; an operations dashboard also needs what went right (crimes
recorded in time), what is pending (deadlines still open) and how long evaluation
takes. The engine reports these through this small interface so that it stays free
of any metrics library; ``cdi_stream.metrics`` implements it with Prometheus.

Each outcome is reported once per subject: the case state remembers which subjects
were counted, so an incident re-evaluated many times, or after a restart, is not
counted again by the same worker's state.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class EngineObserver(Protocol):
    def evaluated(self, seconds: float) -> None:
        """One incident was evaluated against the rules, taking ``seconds``."""

    def recorded(self, seconds_to_record: float, in_time: bool) -> None:
        """A subject got its first crime record, ``seconds_to_record`` after its clock
        started; ``in_time`` when at or before its deadline."""

    def breached(self) -> None:
        """A subject's recording deadline passed with no crime recorded for it."""

    def open_deadlines(self, incident_id: str, due: Collection[float]) -> None:
        """The incident's deadlines still open (due times in epoch seconds); empty when
        none is left."""

    def dropped(self, incident_id: str) -> None:
        """The incident's state was dropped at the end of its retention period: its
        deadlines and flags are no longer held."""
