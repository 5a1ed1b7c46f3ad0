"""The report's statistics against published values."""

from __future__ import annotations

import math

import pytest

from cdi_stream.report.stats import quantile, unrecorded_estimate, wilson_interval


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (score interval without continuity correction).
@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_interval_matches_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    interval = wilson_interval(successes, trials)
    assert interval is not None
    assert interval[0] == pytest.approx(low, abs=5e-5)
    assert interval[1] == pytest.approx(high, abs=5e-5)


def test_wilson_interval_is_none_without_trials_and_refuses_impossible_counts() -> None:
    assert wilson_interval(0, 0) is None
    for successes, trials in ((3, 2), (-1, 5), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(successes, trials)


def test_wilson_interval_holds_the_estimate_and_narrows_with_more_trials() -> None:
    widths = []
    for n in (10, 100, 1000, 10000):
        interval = wilson_interval(round(0.8 * n), n)
        assert interval is not None
        assert interval[0] < 0.8 < interval[1]
        widths.append(interval[1] - interval[0])
    assert widths == sorted(widths, reverse=True)


def test_unrecorded_estimate_is_volume_times_one_over_rate_minus_one() -> None:
    assert unrecorded_estimate(1000, 0.8) == pytest.approx(250.0)
    assert unrecorded_estimate(1000, 1.0) == 0.0
    assert unrecorded_estimate(1000, 0.0) is None
    # HMICFRS, Leicestershire 2017: 75.8% and about 21,200 crimes a year unrecorded,
    # which that formula gives for about 66,400 crimes recorded a year.
    assert unrecorded_estimate(66_400, 0.758) == pytest.approx(21_200, abs=100)
    with pytest.raises(ValueError):
        unrecorded_estimate(-1, 0.5)
    with pytest.raises(ValueError):
        unrecorded_estimate(10, 1.5)


def test_quantile_interpolates_linearly() -> None:
    assert quantile([], 0.5) is None
    assert quantile([4.0], 0.9) == 4.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([0.0, 10.0], 0.9) == pytest.approx(9.0)
    assert math.isclose(quantile([1.0, 2.0, 3.0], 1.0) or 0.0, 3.0)
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)
