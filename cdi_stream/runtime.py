"""Interpreter and process settings for the entry points: the worker, ``replay`` and
the other commands.

Case state for every open incident is many small, long-lived container objects (about
800,000 for 54,000 incidents), and CPython's collector walks all of them on every full
collection. With the default thresholds (700 allocations for a young collection) a
replay spent about 20 µs of each event's 140 in the collector. A young-generation
threshold of 50,000 and freezing what start-up allocated (modules, rules, offence
table) cut that to about 4 µs; reference cycles are still collected, only less often.
Measured in ``bench/bench_replay.py`` and ``bench/bench_stream.py`` (``docs/benchmarks.md``).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

YOUNG_GENERATION_THRESHOLD = 50_000


def tune_gc() -> None:
    """Call once, after start-up and before the first event."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)


def resident_set_bytes() -> int:
    """This process's resident memory (Linux), for the memory figures the benchmarks,
    the sizing script and the memory tests report; 0 where ``/proc`` is not available."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def stdout_reader_gone() -> None:
    """``replay ... | head``: the reader closed the pipe and has what it wanted. Send
    what is left of standard output nowhere, so that the interpreter's last flush at exit
    does not fail again, and let the caller end quietly, as other command-line tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
