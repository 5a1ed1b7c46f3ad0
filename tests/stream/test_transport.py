"""The transport's choice of partitions to reread after a rebalance, and the consumer
start position it relies on."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from cdi_stream.stream.transport import low_latency_app, uncommitted_stream_partitions


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


def test_a_consumer_starting_new_partitions_at_their_end_is_refused() -> None:
    with pytest.raises(ValueError, match="earliest"):
        low_latency_app(100, id="cdi-test", consumer_auto_offset_reset="latest")


def test_the_worker_consumer_starts_new_partitions_at_the_beginning() -> None:
    app = low_latency_app(100, id="cdi-test")
    assert app.conf.consumer_auto_offset_reset == "earliest"
