"""Replay throughput: events per second through the whole core, on one core.

Generates a simulated stream (default 200,000 events), then times ``replay`` over it:
parsing, case state, facts, rule evaluation and flag output, as ``cdi-stream replay``
runs it. Prints the figures; nothing is asserted.

    python bench/bench_replay.py [--events 200000] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.loader import default_rules_dir
from cdi_stream.simulate import SimConfig, write_jsonl


def generate(path: Path, events: int, seed: int) -> tuple[int, int]:
    """Grow the incident count until the file holds at least ``events`` events."""
    incidents = max(1000, events // 4)
    while True:
        truths = write_jsonl(SimConfig(seed=seed, incidents=incidents), path)
        with path.open("rb") as f:
            count = sum(1 for _ in f)
        if count >= events:
            return count, len(truths)
        incidents = int(incidents * events / max(count, 1) * 1.05) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        t0 = time.perf_counter()
        count, incidents = generate(path, args.events, args.seed)
        gen_s = time.perf_counter() - t0
        lines = path.read_bytes().splitlines(keepends=True)
        cpu = f"{platform.machine()} {os.cpu_count()} cpus"
        print(f"machine: {cpu}, Python {platform.python_version()}")
        print(
            f"stream: {count} events, {incidents} incidents, {path.stat().st_size / 1e6:.1f} MB "
            f"(generated in {gen_s:.1f} s)"
        )
        with RuleBook.from_directory(default_rules_dir()) as book:
            best = float("inf")
            for run in range(1, args.repeat + 1):
                sink = io.BytesIO()
                t0 = time.perf_counter()
                summary = replay(lines, book, out=sink)
                elapsed = time.perf_counter() - t0
                best = min(best, elapsed)
                print(
                    f"run {run}: {elapsed:.2f} s, {count / elapsed:,.0f} events/s, "
                    f"{summary.flag_changes} flag changes, {summary.rejected} rejected"
                )
            evaluations = sum(e.evaluations for e in book.editions)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"best: {count / best:,.0f} events/s; rule-core evaluations (memo misses): "
            f"{evaluations}; peak RSS {rss_mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
