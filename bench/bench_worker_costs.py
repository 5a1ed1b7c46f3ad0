"""What two of the worker's tuning choices cost and save, each measured in one run.

1. Idle cost of the fetch wait. A worker with nothing to read still polls the broker
   once per fetch wait (``CDI_FETCH_MAX_WAIT_MS``); a short wait lowers latency and
   costs broker CPU all day. For each wait given, a fresh worker on fresh, empty topics
   is started, left to settle, and the CPU time of the broker and of the worker is
   read from /proc over the sampling window.
2. Collector tuning, A/B. The worker freezes what start-up allocated and raises the
   young-generation threshold (``cdi_stream.runtime.tune_gc``). The same pre-published
   events are drained by a worker with the tuning and by one started with it replaced
   by a no-op, alternating, so both see the same broker and the same machine load.

Prints the figures; nothing is asserted. Uses the machinery of ``bench_stream.py``.

    python bench/bench_worker_costs.py [--waits 100,250,1500] [--idle-seconds 20]
        [--events 50000] [--pairs 1] [--partitions 4] [--seed 1]

About 4 minutes with the defaults on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench_stream import (
    WORKER_COMMAND,
    Names,
    cpu_seconds,
    machine,
    publish_fast,
    running_worker,
    simulated_events,
    worker_throughput,
)

from cdi_stream.broker import LocalBroker, create_topics

SETTLE_SECONDS = 5.0
# The worker as ``cdi-stream worker`` starts it, but with the collector left as it is.
UNTUNED_COMMAND = (
    sys.executable,
    "-c",
    "import cdi_stream.runtime as r; r.tune_gc = lambda: None; "
    "from cdi_stream.cli import main; main()",
    "worker",
)


async def idle_cost(
    broker: LocalBroker, wait_ms: int, seconds: float, partitions: int
) -> tuple[float, float]:
    """Broker and worker CPU, as shares of one core, while the worker has nothing to do."""
    assert broker.pid is not None
    names = Names()
    names.create(broker.bootstrap, partitions)
    with tempfile.TemporaryDirectory(prefix="cdi-bench-data-") as data:
        env = names.worker_env(broker.bootstrap, partitions, "hybrid", Path(data))
        env["CDI_FETCH_MAX_WAIT_MS"] = str(wait_ms)
        with running_worker(env) as worker:
            await asyncio.to_thread(worker.wait_ready)
            await asyncio.sleep(SETTLE_SECONDS)
            before = (cpu_seconds(broker.pid), cpu_seconds(worker.proc.pid), time.monotonic())
            await asyncio.sleep(seconds)
            after = (cpu_seconds(broker.pid), cpu_seconds(worker.proc.pid), time.monotonic())
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker died:\n{worker.tail()}")
    b0, w0, t0 = before
    b1, w1, t1 = after
    if None in (b0, w0, b1, w1):
        raise RuntimeError("no CPU times in /proc for the broker or the worker")
    assert b0 is not None and b1 is not None and w0 is not None and w1 is not None
    return (b1 - b0) / (t1 - t0), (w1 - w0) / (t1 - t0)


async def run(args: argparse.Namespace, broker: LocalBroker) -> None:
    print(f"machine: {machine()}")
    waits = [int(w) for w in args.waits.split(",") if w]
    idle: dict[int, tuple[float, float]] = {}
    for wait in waits:
        idle[wait] = await idle_cost(broker, wait, args.idle_seconds, args.partitions)
        shares = idle[wait]
        print(f"idle, fetch wait {wait} ms: broker {shares[0]:.1%}, worker {shares[1]:.1%}")

    tuned: list[float] = []
    untuned: list[float] = []
    if args.pairs > 0:
        events = simulated_events(args.events, args.seed)
        source = Names()
        create_topics(broker.bootstrap, {source.incidents: args.partitions})
        published = await publish_fast(broker.bootstrap, source.incidents, events, args.partitions)
        del events
        for pair in range(1, args.pairs + 1):
            for label, command, rates in (
                ("tuned", WORKER_COMMAND, tuned),
                ("untuned", UNTUNED_COMMAND, untuned),
            ):
                w = await worker_throughput(
                    broker.bootstrap, published, args.partitions, "event", command
                )
                rates.append(w.rate)
                print(f"[{pair}] worker, collector {label}: {w.rate:,.0f} events/s")

    print()
    print("=" * 72)
    print(f"machine        {machine()}")
    print(f"broker         local Tansu (in memory), {args.partitions} partitions")
    for wait, (broker_share, worker_share) in idle.items():
        print(
            f"idle {wait:>5} ms  broker {broker_share:.1%} of a core, worker {worker_share:.1%} "
            f"({args.idle_seconds:g} s sample)"
        )
    if tuned:
        print(
            f"collector      tuned {max(tuned):,.0f} events/s, untuned {max(untuned):,.0f} "
            f"(best of {args.pairs}; {args.events:,} events, event clock)"
        )
    print("=" * 72)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", default="100,250,1500", help="fetch waits to idle at, ms")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--events", type=int, default=50_000, help="A/B events")
    parser.add_argument("--pairs", type=int, default=1, help="A/B pairs; 0 skips the A/B")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    broker = LocalBroker().start()
    try:
        asyncio.run(run(args, broker))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        broker.cleanup()


if __name__ == "__main__":
    main()
