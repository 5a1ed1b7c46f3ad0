"""The interpreter settings of the long-running entry points."""

from __future__ import annotations

import subprocess
import sys

from cdi_stream.runtime import resident_set_bytes

CHECK_TUNED_GC = """
import gc, weakref
from cdi_stream.runtime import YOUNG_GENERATION_THRESHOLD, tune_gc

class Node:
    pass

tune_gc()
assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD, gc.get_threshold()
assert gc.get_freeze_count() > 0
a, b = Node(), Node()
a.other, b.other = b, a
gone = weakref.ref(a)
del a, b
# Net allocations of tracked objects alone must trigger a young collection.
keep = [[] for _ in range(YOUNG_GENERATION_THRESHOLD * 2)]
assert gone() is None, "a reference cycle outlived the young-generation collections"
"""


def test_tuned_collector_still_frees_reference_cycles() -> None:
    # In a child: the thresholds and the frozen generation are process-wide.
    subprocess.run([sys.executable, "-c", CHECK_TUNED_GC], check=True, timeout=60)


def test_resident_set_grows_with_what_the_process_holds() -> None:
    before = resident_set_bytes()
    held = bytearray(64 * 2**20)
    held[::4096] = b"x" * len(held[::4096])  # touch every page
    assert resident_set_bytes() - before >= 48 * 2**20
    del held
