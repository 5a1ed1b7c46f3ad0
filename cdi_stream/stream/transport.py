"""faust's aiokafka transport with a configurable consumer fetch wait.

faust creates its worker consumer with ``fetch_max_wait_ms=1500`` and no setting to
change it. A broker that answers a waiting fetch as soon as data arrives (Apache Kafka
with ``fetch.min.bytes=1``) makes the wait matter only when the topics are idle; one
that holds every fetch for the whole wait (the local test broker) adds up to that much
latency to each event. This transport takes the wait from ``CDI_FETCH_MAX_WAIT_MS``.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver


def low_latency_app(fetch_max_wait_ms: int, **options: Any) -> faust.App:
    """A faust app whose worker consumer waits at most ``fetch_max_wait_ms`` per fetch."""

    class ConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # Read by the fetcher that aiokafka creates when the consumer starts.
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

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
