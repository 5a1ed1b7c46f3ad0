"""How hard the fuzz tests try.

The default keeps them inside the ordinary test run (tens of seconds). Set
``HYPOTHESIS_PROFILE=fuzz`` (25x the examples) or ``HYPOTHESIS_PROFILE=fuzz-long``
(250x) for a longer search; failures are kept in ``.hypothesis/`` and replayed first
on the next run.
"""

from __future__ import annotations

import os
from typing import Final

from hypothesis import HealthCheck, settings

SCALES: Final = {"fuzz": 25, "fuzz-long": 250}
PROFILE: Final = os.environ.get("HYPOTHESIS_PROFILE", "")
SCALE: Final = SCALES.get(PROFILE, 1)


def budget(examples: int) -> settings:
    """Settings for a fuzz test worth ``examples`` examples in the default run."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
