"""Small statistics the report needs, kept pure so they can be checked against
published values.

The Wilson score interval is what HMICFRS-style audit figures call for: unlike the
normal approximation it stays inside [0, 1] and behaves at rates near 100% and with the
small counts a category such as rape gives in a month.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

Z95: Final = 1.959963984540054
"""The two-sided 95% quantile of the standard normal distribution."""


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for ``successes`` out of ``trials``; None with no trials."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return None
    n = float(trials)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half = (z / denominator) * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def unrecorded_estimate(yearly_volume: float, rate: float) -> float | None:
    """Crimes a year that went unrecorded, if ``yearly_volume`` crimes were recorded and
    they are the share ``rate`` of those that should have been.

    Recorded = rate x owed, so owed = recorded / rate and the unrecorded remainder is
    recorded x (1 / rate - 1). None when the rate is 0: nothing can be extrapolated.
    """
    if yearly_volume < 0:
        raise ValueError("the yearly volume must not be negative")
    if not 0.0 <= rate <= 1.0:
        raise ValueError("the rate must be between 0 and 1")
    if rate == 0.0:
        return None
    return yearly_volume * (1.0 / rate - 1.0)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of sorted ``values`` by linear interpolation; None if empty."""
    if not values:
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be between 0 and 1")
    position = q * (len(values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(values) - 1)
    fraction = position - below
    return values[below] + (values[above] - values[below]) * fraction
