"""Case state in a changelog-backed faust table, and the deadline index beside it.

The engine sees the table through the same small store interface as in a replay. A
write-through cache of decoded states saves decoding the same dict on every event;
the table stays the source of truth, so a restarted or rebalanced worker recovers
everything from the changelog. The deadline index is not stored separately: each
case carries its next wake-up time, and each partition's heap is rebuilt from the
table after recovery.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, MutableMapping
from typing import Any

from kafka.partitioner.default import murmur2

from cdi_stream.engine.state import CaseState


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key (Java client compatible)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class TableStore:
    """``CaseStore`` over a faust table: raw incident-id keys, ``CaseState.to_dict()``
    values.

    It also counts the cases of the partitions this worker owns: the table itself may
    still hold the keys of partitions handed to another worker, which would count
    twice across the group."""

    def __init__(self, table: MutableMapping[bytes, Any], partitions: int) -> None:
        self._table = table
        self._cache: dict[str, CaseState] = {}
        self.partitions = partitions
        self._held: Counter[int] = Counter()

    def partition_of(self, incident_id: str) -> int:
        """The partition that owns an incident's state: where its events must arrive."""
        return partition_for(incident_id, self.partitions)

    def get(self, incident_id: str) -> CaseState | None:
        state = self._cache.get(incident_id)
        if state is not None:
            return state
        raw = self._table.get(incident_id.encode())
        if raw is None:
            return None
        state = CaseState.from_dict(raw)
        self._cache[incident_id] = state
        return state

    def put(self, state: CaseState) -> None:
        key = state.incident_id.encode()
        if state.incident_id not in self._cache and key not in self._table:
            self._held[self.partition_of(state.incident_id)] += 1
        self._cache[state.incident_id] = state
        self._table[key] = state.to_dict()

    def delete(self, incident_id: str) -> None:
        self._cache.pop(incident_id, None)
        key = incident_id.encode()
        if key in self._table:
            del self._table[key]
            self._held[self.partition_of(incident_id)] -= 1

    def held(self) -> int:
        """Cases of the partitions owned (as of the last ``own``)."""
        return sum(self._held.values())

    def own(self, counts: Counter[int]) -> None:
        """After a rebalance: the cases per partition now owned."""
        self._held = Counter(counts)

    def forget_cache(self) -> None:
        """After a rebalance the table, not the cache, says what this worker owns."""
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(k.decode() for k in self._table))
