"""The transport's choice of partitions to reread after a rebalance."""

from __future__ import annotations

from typing import NamedTuple

from cdi_stream.stream.transport import uncommitted_stream_partitions


class TP(NamedTuple):
    topic: str
    partition: int


def test_only_uncommitted_input_partitions_are_reread() -> None:
    committed = {
        TP("cdi.incidents", 0): 10,
        TP("cdi.incidents", 1): None,
        TP("cdi.incidents", 2): 0,
        TP("cdi.ddm-decisions", 1): None,
        TP("cdi-cases-changelog", 1): None,
    }
    got = uncommitted_stream_partitions(committed, {"cdi-cases-changelog"})
    assert got == [TP("cdi.incidents", 1), TP("cdi.ddm-decisions", 1)]
