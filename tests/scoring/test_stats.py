"""The statistics of comparisons, on cases worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring.stats import mcnemar_exact, spread, wilson_interval


def test_wilson_interval_of_8_out_of_10():
    # (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n) with p = 0.8, n = 10, z = 1.95996
    low, high = wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.49016, abs=1e-5), pytest.approx(0.94332, abs=1e-5))


def test_wilson_interval_stays_inside_0_and_1_at_a_perfect_score():
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(10 / (10 + 1.959964**2), abs=1e-5)  # 0.72246


def test_spread_of_three_seeds():
    # mean 0.92, sd 0.02, t(0.975, 2) = 4.30265: half-width 4.30265 * 0.02 / sqrt(3) = 0.049683
    s = spread([0.90, 0.92, 0.94])
    assert (s.n, s.mean, s.sd) == (3, pytest.approx(0.92), pytest.approx(0.02))
    assert (s.low, s.high) == (pytest.approx(0.870317, abs=1e-6), pytest.approx(0.969683, abs=1e-6))


def test_seeds_that_agree_exactly_have_an_interval_of_one_point():
    s = spread([0.93, 0.93])
    assert (s.sd, s.low, s.high) == (0.0, pytest.approx(0.93), pytest.approx(0.93))


def test_one_seed_has_no_spread_rather_than_a_made_up_one():
    s = spread([0.93])
    assert (s.n, s.mean, s.sd, s.low, s.high) == (1, 0.93, None, None, None)


def test_mcnemar_exact_counts_only_the_images_one_variant_alone_gets_right():
    # 1 image only a gets right, 6 only b, 10 both, 3 neither: two-sided binomial p = 2 * P(X <= 1 | 7, 0.5)
    a = np.array([1] * 1 + [0] * 6 + [1] * 10 + [0] * 3, bool)
    b = np.array([0] * 1 + [1] * 6 + [1] * 10 + [0] * 3, bool)
    assert mcnemar_exact(a, b) == pytest.approx(2 * (1 + 7) / 2**7)  # 0.125
    assert mcnemar_exact(a, a) == 1.0


def test_mcnemar_needs_the_same_images():
    with pytest.raises(ValueError, match="same images"):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))
