"""Memory a worker holds per incident in its state, for sizing pods and hosts.

Feeds a simulated stream through the engine with the worker's own state layout (a
``TableStore`` over a dict, as faust's ``memory://`` table holds it, plus the decoded
cache, a deadline heap and the metrics observer) and, for comparison, with the replay's
plain ``MemoryStore``. Each measurement runs in a fresh interpreter, so memory freed by
an earlier one cannot hide growth. Two figures per layout:

- ``traced``: bytes of Python objects still allocated at the end (``tracemalloc``,
  after a full collection), divided by the incidents held;
- ``rss``: growth of the resident set over the same run without ``tracemalloc``,
  divided by the incidents held (also counts allocator slack, the rules' memo and
  caches: the figure to size a host with).

Also prints the mean size of one incident's changelog record (its state as JSON),
which sizes the changelog topic and a ``rocksdb://`` data volume.

    python deploy/sizing/measure_state_memory.py [--incidents 20000] [--seed 1]

Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from typing import Any

LAYOUTS = ("worker-memory", "replay")


def _metrics() -> Any:
    """The worker's metrics observer (it tracks open deadlines per subject), if any."""
    try:
        from cdi_stream.metrics import Metrics
    except ImportError:
        return None
    return Metrics()


def measure(layout: str, incidents: int, seed: int, traced: bool) -> dict[str, Any]:
    """One run: generate, apply every event, advance to the end, measure what is held."""
    from cdi_stream.contract import parse_incident_event
    from cdi_stream.engine import Engine, HeapDeadlines
    from cdi_stream.rules.book import RuleBook
    from cdi_stream.rules.loader import default_rules_dir
    from cdi_stream.runtime import resident_set_bytes
    from cdi_stream.simulate import SimConfig, encode_event, generate
    from cdi_stream.stream.tables import TableStore

    book = RuleBook.from_directory(default_rules_dir())
    stream = generate(SimConfig(seed=seed, incidents=incidents))
    events = [parse_incident_event(encode_event(event)) for event, _ in stream]
    table: dict[bytes, Any] = {}
    gc.collect()
    if traced:
        tracemalloc.start()
    before = resident_set_bytes()
    started = time.perf_counter()
    if layout == "worker-memory":
        engine = Engine(
            book,
            store=TableStore(table, 8),
            deadlines=HeapDeadlines(),
            observer=_metrics(),
        )
    else:
        engine = Engine(book)
    for event in events:
        engine.apply(event)
    if engine.now is not None:
        engine.advance_to(engine.now, inclusive=True)
    elapsed = time.perf_counter() - started
    gc.collect()
    held = len(engine.store)
    result: dict[str, Any] = {
        "layout": layout,
        "events": len(events),
        "incidents": incidents,
        "held": held,
        "seconds": round(elapsed, 2),
    }
    if traced:
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["traced_bytes"] = current
    else:
        result["rss_bytes"] = resident_set_bytes() - before
    if layout == "worker-memory" and not traced:
        sizes = [len(json.dumps(value).encode()) for value in table.values()]
        result["record_bytes_mean"] = round(sum(sizes) / max(len(sizes), 1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", choices=LAYOUTS, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.incidents, args.seed, args.traced)))
        return
    for layout in LAYOUTS:
        runs: dict[str, Any] = {}
        for traced in (False, True):
            command = [sys.executable, __file__, "--one", layout]
            command += ["--incidents", str(args.incidents), "--seed", str(args.seed)]
            if traced:
                command.append("--traced")
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs.update(json.loads(out.strip().splitlines()[-1]))
        held = max(runs["held"], 1)
        line = (
            f"{layout:14} events {runs['events']:>8,}  incidents held {runs['held']:>7,}  "
            f"traced {runs['traced_bytes'] / held / 1024:5.1f} KiB/incident  "
            f"rss {runs['rss_bytes'] / held / 1024:5.1f} KiB/incident"
        )
        if "record_bytes_mean" in runs:
            line += f"  changelog record {runs['record_bytes_mean'] / 1024:.1f} KiB"
        print(line)


if __name__ == "__main__":
    main()
