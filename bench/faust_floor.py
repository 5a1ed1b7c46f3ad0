"""A faust worker that does nothing but what every worker must: the framework's floor.

Started by ``bench_faust_floor.py`` in place of ``cdi-stream worker``, with the same
``CDI_`` environment, the same faust app (``low_latency_app`` with the service's
settings) and the same topics. It never parses or evaluates anything, so its
throughput bounds what any worker built on faust can reach on that broker:

- ``forward``: the agent sends each input record unchanged to the cases changelog
  topic (one produced record per event, as the bare aiokafka loop makes);
- ``table``: the agent stores each record's value in the cases table under its key,
  so faust writes it to the same changelog (one table write per event; the service
  makes 1.1-1.2 of these per event, plus its flags).

Either way the changelog gets one record per event holding the event itself, which is
what ``bench_stream.changelog_times`` reads to time a run.

    CDI_... python bench/faust_floor.py forward|table
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from cdi_stream.runtime import tune_gc
from cdi_stream.settings import Settings, load_settings
from cdi_stream.stream.app import RAW_BYTES, cases_table
from cdi_stream.stream.transport import low_latency_app
from cdi_stream.stream.worker import _Worker, ensure_topics

MODES = ("forward", "table")
log = logging.getLogger("cdi_stream.bench.floor")


def build(mode: str, settings: Settings) -> Any:
    app = low_latency_app(settings.fetch_wait_ms(), **settings.faust_settings())
    raw = RAW_BYTES
    incidents = app.topic(settings.topic_incidents, partitions=settings.partitions, **raw)
    table = cases_table(app, settings)

    if mode == "table":

        @app.agent(incidents, name="floor-table")
        async def store(stream: Any) -> None:
            async for event in stream.events():
                table[event.message.key] = event.message.value

    else:
        changelog = app.topic(settings.changelog_topic, partitions=settings.partitions, **raw)

        @app.agent(incidents, name="floor-forward")
        async def forward(stream: Any) -> None:
            async for event in stream.events():
                await changelog.send(key=event.message.key, value=event.message.value)

    @table.on_recover
    async def recovered() -> None:
        # The line the benchmark waits for, as it waits for the service's.
        log.info("cases recovered: floor worker (%s)", mode)

    return app


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: faust_floor.py {'|'.join(MODES)}")
    settings = load_settings()
    ensure_topics(settings)
    app = build(sys.argv[1], settings)
    logging.getLogger("cdi_stream").setLevel("INFO")
    worker = _Worker(
        app, loglevel="info", quiet=True, shutdown_timeout=settings.shutdown_timeout_seconds
    )
    tune_gc()
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
