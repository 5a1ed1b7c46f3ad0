"""faust's aiokafka transport, with two changes the service depends on.

1. A configurable consumer fetch wait. faust creates its worker consumer with
   ``fetch_max_wait_ms=1500`` and no setting to change it. A broker that answers a
   waiting fetch as soon as data arrives (Apache Kafka with ``fetch.min.bytes=1``)
   makes the wait matter only when the topics are idle; one that holds every fetch for
   the whole wait (the local test broker) adds up to that much latency to each event.
   The wait comes from ``CDI_FETCH_MAX_WAIT_MS``.

2. No events skipped when a worker takes over a partition that was never committed.
   While a worker recovers its tables after a rebalance, its consumer may already
   fetch a newly assigned partition, and faust drops those records but the consumer's
   position moves past them. faust then seeks every stream partition back to its
   committed offset, which puts the dropped records back, except where there is no
   committed offset (the previous owner died before its first commit): there faust
   does not seek at all, and the records fetched during recovery are never processed.
   Here such partitions are sent back to the beginning (where the service's consumer
   starts on a partition with no committed offset: it never sets
   ``auto_offset_reset=latest``, which would skip events), so they are processed in
   full; events already applied are recognised by their ids and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver


def uncommitted_stream_partitions(
    committed: Mapping[Any, int | None], changelog_topics: set[str]
) -> list[Any]:
    """Partitions with no committed offset, other than table changelogs (whose read
    position faust keeps itself)."""
    return [
        tp
        for tp, offset in committed.items()
        if offset is None and tp.topic not in changelog_topics
    ]


def low_latency_app(fetch_max_wait_ms: int, **options: Any) -> faust.App:
    """A faust app whose worker consumer waits at most ``fetch_max_wait_ms`` per fetch
    and rereads uncommitted partitions from the start after a rebalance."""
    if options.get("consumer_auto_offset_reset", "earliest") != "earliest":
        # A consumer that starts new partitions at their end skips every event
        # published before it joined; the rereading above assumes the beginning.
        raise ValueError("the worker's consumer must start new partitions at the earliest offset")

    class ConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # Read by the fetcher that aiokafka creates when the consumer starts.
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

        async def seek_to_committed(self) -> Mapping[Any, int]:
            committed: Mapping[Any, int] = await super().seek_to_committed()
            fresh = uncommitted_stream_partitions(committed, set(self.app.tables.changelog_topics))
            if fresh:
                consumer = self._ensure_consumer()
                await self.call_thread(consumer.seek_to_beginning, *fresh)
            return committed

    class Consumer(driver.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(driver.Transport):
        pass

    Transport.Consumer = Consumer

    class App(faust.App):
        def _new_transport(self) -> Transport:
            return Transport(self.conf.broker_consumer, self)

    return App(**options)
