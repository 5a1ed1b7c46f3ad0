"""The deadline index: which incident needs looking at next, and when.

Each incident has at most one pending wake-up (its earliest future deadline, warning
or retention time); scheduling replaces it. The index is ordered by time, so firing a
due wake-up costs O(log n) and never scans every incident. Ties are broken by incident
id so that replays fire in the same order every time.
"""

from __future__ import annotations

import heapq
from typing import Protocol


class DeadlineIndex(Protocol):
    def schedule(self, incident_id: str, at: float | None) -> None:
        """Set (or with ``None`` clear) the incident's next wake-up."""

    def pop_due(self, until: float, inclusive: bool) -> tuple[float, str] | None:
        """Remove and return the earliest wake-up before ``until`` (or at it)."""

    def peek(self) -> float | None:
        """The earliest pending wake-up time."""

    def __len__(self) -> int: ...


class HeapDeadlines:
    """A binary heap with lazy deletion: replaced entries are skipped when popped."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._current: dict[str, float] = {}

    def schedule(self, incident_id: str, at: float | None) -> None:
        old = self._current.get(incident_id)
        if old == at:
            return
        if at is None:
            self._current.pop(incident_id, None)
        else:
            self._current[incident_id] = at
            heapq.heappush(self._heap, (at, incident_id))
        if len(self._heap) > 64 + 4 * len(self._current):
            self._compact()

    def pop_due(self, until: float, inclusive: bool) -> tuple[float, str] | None:
        heap = self._heap
        while heap:
            at, incident_id = heap[0]
            if self._current.get(incident_id) != at:
                heapq.heappop(heap)
                continue
            if at < until or (inclusive and at == until):
                heapq.heappop(heap)
                del self._current[incident_id]
                return at, incident_id
            return None
        return None

    def peek(self) -> float | None:
        while self._heap:
            at, incident_id = self._heap[0]
            if self._current.get(incident_id) == at:
                return at
            heapq.heappop(self._heap)
        return None

    def _compact(self) -> None:
        self._heap = [(at, i) for i, at in self._current.items()]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._current)
