"""Publishing an event stream to Kafka at a chosen pace.

A demo or a load test needs the simulator's events to arrive as a control room would
send them: at a steady rate, and with event time compressed (``speed`` = event seconds
per wall second) so that 24-hour deadlines show in minutes. Pacing is computed from the
start of the run, not from the previous event, so a slow send is caught up rather than
accumulating delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaProducer

from cdi_stream.simulate import encode_event


@dataclass(frozen=True, slots=True)
class Pace:
    """``rate``: most events per wall second (0 = no limit); ``speed``: event-time
    seconds per wall second (0 = do not follow event time)."""

    rate: float = 0.0
    speed: float = 0.0

    def __post_init__(self) -> None:
        if self.rate < 0 or self.speed < 0:
            raise ValueError("rate and speed must not be negative")

    def due(self, index: int, event_offset: float) -> float:
        """Wall seconds after the start at which event ``index`` may be sent."""
        by_rate = index / self.rate if self.rate else 0.0
        by_time = event_offset / self.speed if self.speed else 0.0
        return max(by_rate, by_time)


def event_seconds(event: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00")).timestamp()


def publish(
    events: Iterable[Mapping[str, Any]],
    *,
    bootstrap: str,
    topic: str,
    pace: Pace,
    producer_config: Mapping[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Send every event keyed by its incident id; return how many were sent."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "linger_ms": 5,
        "bootstrap_timeout_ms": 10_000,
    }
    config.update(producer_config or {})
    producer = KafkaProducer(**config)
    sent = 0
    first: float | None = None
    started = clock()
    try:
        for event in events:
            offset = 0.0
            if pace.speed:
                at = event_seconds(event)
                first = at if first is None else first
                offset = at - first
            wait = started + pace.due(sent, offset) - clock()
            if wait > 0:
                producer.flush()
                sleep(wait)
            producer.send(
                topic, key=str(event["incident_id"]).encode(), value=encode_event(dict(event))
            )
            sent += 1
            if on_sent is not None:
                on_sent(sent)
        producer.flush()
    finally:
        producer.close()
    return sent
