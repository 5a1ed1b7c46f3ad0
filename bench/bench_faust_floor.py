"""How fast can any faust worker go on this broker? The floor under the service's figure.

The service target is half the throughput of a bare aiokafka consume-and-produce loop.
The worker is built on faust, as the design prescribes, so faust's own cost per event
bounds what it can reach whatever the engine does. This script drains the same
pre-published events, on one broker and in one run, with:

1. the bare aiokafka loop of ``bench_stream.py``;
2. a faust worker whose agent forwards each record unchanged (``faust_floor.py
   forward``): faust's consumer, stream and producer, nothing else;
3. a faust worker whose agent stores each record in a table (``faust_floor.py table``):
   adds the table write and its changelog record, as the service makes per event;
4. ``cdi-stream worker`` itself (event clock).

The faust runs use the service's settings, topics and transport, and are timed as the
service is: from the first to the last record written to the cases changelog. Rounds
alternate the four, so all see the same machine load. Prints the figures; nothing is
asserted.

    python bench/bench_faust_floor.py [--events 50000] [--rounds 1] [--partitions 4]
        [--seed 1] [--bootstrap HOST:PORT]

About 3 minutes per round with the defaults on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from bench_stream import (
    RATIO_TARGET,
    WORKER_COMMAND,
    bare_loop,
    machine,
    publish_fast,
    run_on_broker,
    simulated_events,
    worker_throughput,
)

from cdi_stream.broker import create_topics

FLOOR = str(Path(__file__).with_name("faust_floor.py"))
RUNS: dict[str, tuple[str, ...] | None] = {
    "bare aiokafka loop": None,
    "faust, forward only": (sys.executable, FLOOR, "forward"),
    "faust, table write": (sys.executable, FLOOR, "table"),
    "cdi-stream worker": WORKER_COMMAND,
}


async def run(args: argparse.Namespace, bootstrap: str, broker_name: str) -> None:
    print(f"machine: {machine()}")
    print(f"broker: {broker_name} at {bootstrap}; {args.partitions} partitions per topic")
    events = simulated_events(args.events, args.seed)
    source = f"floor{uuid.uuid4().hex[:8]}.incidents"
    create_topics(bootstrap, {source: args.partitions})
    published = await publish_fast(bootstrap, source, events, args.partitions)
    print(f"published {published.count:,} events")
    del events
    rates: dict[str, list[float]] = {name: [] for name in RUNS}
    for round_no in range(1, args.rounds + 1):
        for name, command in RUNS.items():
            if command is None:
                target = f"{source}.copy{round_no}"
                create_topics(bootstrap, {target: args.partitions})
                rate, _ = await bare_loop(
                    bootstrap, source, target, args.partitions, published.count
                )
                notes: list[str] = []
            else:
                w = await worker_throughput(bootstrap, published, args.partitions, "event", command)
                rate, notes = w.rate, w.notes
            rates[name].append(rate)
            print(f"[{round_no}] {name}: {rate:,.0f} events/s")
            for note in notes:
                print(f"    note: {note}")
    bare = max(rates["bare aiokafka loop"])
    print()
    print("=" * 72)
    print(f"machine  {machine()}")
    print(f"broker   {broker_name}, {args.partitions} partitions, {published.count:,} events")
    for name, values in rates.items():
        best = max(values)
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:<22} {best:>8,.0f} events/s  {best / bare:5.2f} of bare  ({runs})")
    print(f"target: the worker at >= {RATIO_TARGET:.2f} of the bare loop")
    print("=" * 72)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bootstrap", help="use this broker instead of a local one")
    run_on_broker(run, parser.parse_args())


if __name__ == "__main__":
    main()
