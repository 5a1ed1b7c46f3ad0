from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdi_stream.rules.book import RuleBook

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "rules"


@pytest.fixture(scope="session")
def book() -> Iterator[RuleBook]:
    with RuleBook.from_directory(RULES_DIR) as compiled:
        yield compiled
