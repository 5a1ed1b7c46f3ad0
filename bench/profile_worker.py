"""Where a busy worker's time goes: a sampling profile, split by part of the service.

Pre-publishes simulated events, starts one ``cdi-stream worker`` (event clock) on
them and, once its tables are recovered, attaches py-spy to it while it drains the
backlog. Each sample's stack is put in the first part whose marker it holds (the
order below matters: the case write happens inside the engine's ``apply``). Samples
waiting in the event loop's ``select`` are idle time, reported apart; the shares are
of the busy samples. Prints the figures; nothing is asserted. Needs py-spy (in the
``dev`` extra) and permission to trace the worker (root, or ptrace allowed).

    python bench/profile_worker.py [--events 30000] [--seconds 20] [--rate 200]
        [--partitions 4] [--raw FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench_stream import Names, machine, publish_fast, running_worker, simulated_events

from cdi_stream.broker import LocalBroker, create_topics

# (part, markers): a sample belongs to the first part any of whose markers is in its
# stack (frames are "function (path:line)", joined by ";").
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("engine: writing the case to the table", ("TableStore.put", "TableStore.delete")),
    ("engine: evaluation", ("Engine._evaluate",)),
    ("engine: the rest (apply, intake, deadlines)", ("cdi_stream/engine/",)),
    ("contract parsing", ("cdi_stream/contract.py",)),
    (
        "producing (changelog and flags)",
        ("aiokafka/producer", "faust/transport/producer", "send_soon", "Producer."),
    ),
    ("consumer thread", ("ConsumerThread", "aiokafka/consumer", "Consumer.")),
    ("faust streams and agents", ("faust/streams", "faust/agents")),
    ("service shell (cdi_stream.stream, metrics)", ("stream/app.py", "cdi_stream/metrics.py")),
)
OTHER = "other (asyncio event loop, Kafka protocol, libraries)"
IDLE_MARKERS = ("EpollSelector.select", "selectors.py")


def classify(raw: str) -> tuple[Counter[str], int]:
    """Busy samples by part, and the number of idle samples, from py-spy's raw output."""
    parts: Counter[str] = Counter()
    idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        if any(m in leaf for m in IDLE_MARKERS):
            idle += int(count)
            continue
        part = next((name for name, marks in PARTS if any(m in stack for m in marks)), OTHER)
        parts[part] += int(count)
    return parts, idle


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy not found: pip install py-spy (it is in the dev extra)")
    return found


async def profile(args: argparse.Namespace, broker: LocalBroker, out: Path) -> None:
    events = simulated_events(args.events, args.seed)
    source = Names()
    create_topics(broker.bootstrap, {source.incidents: args.partitions})
    published = await publish_fast(broker.bootstrap, source.incidents, events, args.partitions)
    del events
    names = Names(incidents_topic=published.topic)
    names.create(broker.bootstrap, args.partitions)
    with tempfile.TemporaryDirectory(prefix="cdi-bench-data-") as data:
        env = names.worker_env(broker.bootstrap, args.partitions, "event", Path(data))
        with running_worker(env) as worker:
            await asyncio.to_thread(worker.wait_ready)
            command = [py_spy(), "record", "--pid", str(worker.proc.pid), "--format", "raw"]
            command += ["--rate", str(args.rate), "--duration", str(args.seconds)]
            done = await asyncio.to_thread(
                subprocess.run, [*command, "--output", str(out)], capture_output=True, text=True
            )
            if done.returncode != 0 or not out.exists():
                raise RuntimeError(f"py-spy failed:\n{done.stderr}")
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker died:\n{worker.tail()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000, help="backlog to drain")
    parser.add_argument("--seconds", type=int, default=20, help="sampling window")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks here")
    args = parser.parse_args()
    py_spy()
    with tempfile.TemporaryDirectory(prefix="cdi-bench-profile-") as tmp:
        out = Path(tmp) / "worker.raw"
        with LocalBroker() as broker:
            asyncio.run(profile(args, broker, out))
        raw = out.read_text()
        if args.raw is not None:
            args.raw.write_text(raw)
    parts, idle = classify(raw)
    busy = sum(parts.values())
    if busy == 0:
        raise SystemExit("no busy samples: was the backlog drained before sampling began?")
    print("=" * 72)
    print(f"machine        {machine()}")
    print(
        f"samples        {busy + idle:,} at {args.rate}/s over {args.seconds} s; "
        f"busy {busy / (busy + idle):.0%}, waiting in select {idle / (busy + idle):.0%}"
    )
    for name, count in parts.most_common():
        print(f"  {count / busy:6.1%}  {name}")
    print("=" * 72)


if __name__ == "__main__":
    main()
