"""Replay throughput: events per second through the whole core, on one core.

Generates a simulated stream (default 200,000 events), then times ``replay`` over it:
parsing, case state, facts, rule evaluation and flag output, as ``cdi-stream replay``
runs it. The best of ``--repeat`` runs is the headline figure. One more pass, driving
the engine directly, splits the time between parsing, the engine and writing flags,
counts the garbage collector's share, and measures the memory the open incidents
hold. A last set of runs replaces the engine's evaluation with nothing, to show the
floor that parsing and case bookkeeping alone put under any rule evaluation. Prints the
figures; nothing is asserted.

    python bench/bench_replay.py [--events 200000] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import io
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdi_stream.contract import FlagChange, parse_incident_event
from cdi_stream.engine import Engine
from cdi_stream.engine.facts import Moment
from cdi_stream.engine.state import CaseState
from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.loader import default_rules_dir
from cdi_stream.runtime import resident_set_bytes, tune_gc
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


def machine() -> str:
    """CPU model, cores, memory and Python: what the figures were measured on."""
    model = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = "RAM unknown"
    return f"{model}, {os.cpu_count()} cores, {memory}, Python {platform.python_version()}"


def deep_size(obj: object, seen: set[int]) -> int:
    """Bytes of ``obj`` and everything it holds that ``seen`` does not hold already."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in obj)
    elif dataclasses.is_dataclass(obj):
        size += sum(deep_size(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    return size


@dataclass
class Breakdown:
    parse: float = 0.0
    engine: float = 0.0
    output: float = 0.0
    gc: float = 0.0
    evaluations: int = 0
    held: int = 0
    rss_growth: int = 0
    state_bytes: int = 0


def breakdown(lines: list[bytes], book: RuleBook) -> Breakdown:
    """One pass like ``replay``, timing each stage, the collector and the memory held.

    Memory is measured two ways: the Python objects of the incidents still held at the
    end (case state and the last published flags), and the growth of the resident set
    over the pass after a full collection, which also counts the rules' memo, caches
    and allocator slack. Run it first in a fresh process, before freed memory can be
    reused and hide the growth.
    """
    out = Breakdown()
    started: list[float] = []

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            out.gc += time.perf_counter() - started.pop()

    gc.collect()
    before = resident_set_bytes()
    engine = Engine(book)
    sink = io.BytesIO()
    gc.callbacks.append(on_gc)
    try:
        clock = time.perf_counter
        for raw in lines:
            t0 = clock()
            event = parse_incident_event(raw)
            t1 = clock()
            changes = engine.apply(event)
            t2 = clock()
            for change in changes:
                sink.write(change.to_json_bytes() + b"\n")
            t3 = clock()
            out.parse += t1 - t0
            out.engine += t2 - t1
            out.output += t3 - t2
        if engine.now is not None:
            t0 = clock()
            for change in engine.advance_to(engine.now, inclusive=True):
                sink.write(change.to_json_bytes() + b"\n")
            out.engine += clock() - t0
    finally:
        gc.callbacks.remove(on_gc)
    gc.collect()
    out.rss_growth = resident_set_bytes() - before
    out.held = len(engine.store)
    seen: set[int] = set()
    store = engine.store
    out.state_bytes = sum(deep_size(store.get(i), seen) for i in store)
    out.evaluations = engine.stats["evaluations"]
    return out


class WithoutRules(Engine):
    """The engine with its evaluation taken out: events are still checked for
    duplicates and bounds, folded into their case, stored and given a drop time, but no
    facts are computed, no rule is asked and no flag is made. What a replay costs with
    this engine is the floor that any evaluation, however fast, adds to."""

    def _evaluate_case(self, case: CaseState, at: Moment) -> list[FlagChange]:
        self._schedule(case, [])
        return []


def floor(lines: list[bytes], book: RuleBook) -> float:
    """Seconds to parse every line and apply it to ``WithoutRules``."""
    engine = WithoutRules(book)
    t0 = time.perf_counter()
    for raw in lines:
        engine.apply(parse_incident_event(raw))
    return time.perf_counter() - t0


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
        print(f"machine: {machine()}")
        print(
            f"stream: {count} events, {incidents} incidents, {path.stat().st_size / 1e6:.1f} MB "
            f"(generated in {gen_s:.1f} s)"
        )
        with RuleBook.from_directory(default_rules_dir()) as book:
            tune_gc()  # as ``cdi-stream replay`` does
            split = breakdown(lines, book)
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
            bare = min(floor(lines, book) for _ in range(args.repeat))
        print(
            f"best: {count / best:,.0f} events/s ({best / count * 1e6:.1f} us/event); "
            f"rule-core evaluations (memo misses): {evaluations}"
        )
        us = 1e6 / count
        total = split.parse + split.engine + split.output
        print(
            f"where the time goes (separate pass, us/event): parse {split.parse * us:.1f}, "
            f"engine {split.engine * us:.1f}, flag output {split.output * us:.1f} "
            f"(total {total * us:.1f}; garbage collector {split.gc * us:.1f} of it); "
            f"{split.evaluations / count:.2f} evaluations/event"
        )
        print(
            f"floor without rule evaluation (parse, duplicate check, case, store; no facts, "
            f"rules or flags): {count / bare:,.0f} events/s ({bare * us:.1f} us/event), "
            f"best of {args.repeat}"
        )
        held = max(split.held, 1)
        print(
            f"memory: {split.held} incidents held at the end; their state "
            f"{split.state_bytes / 2**20:.0f} MiB ({split.state_bytes / held / 1024:.1f} KiB "
            f"each); resident set grew {split.rss_growth / 2**20:.0f} MiB "
            f"({split.rss_growth / held / 1024:.1f} KiB per incident held)"
        )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
