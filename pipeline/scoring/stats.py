"""How sure a comparison is: intervals and tests from scipy, for one run's accuracy and across repeated runs.

- One run: the Wilson score interval of an accuracy (correct images out of a test set), which stays inside [0, 1]
  and is honest near 100%, where the normal approximation is not.
- Several seeds of one variant: mean, standard deviation and the Student-t interval of the mean.
- Two variants on the same test images: McNemar's exact test, a binomial test on the images that exactly one of
  the two gets right (the images both get right or wrong say nothing about which is better).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The interval of an accuracy of `correct` out of `total`."""
    ci = stats.binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Spread:
    """A variant's values over its seeds; sd and the interval are None with fewer than two (none can be had)."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None


def spread(values: Sequence[float], confidence: float = CONFIDENCE) -> Spread:
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return Spread(len(v), float(v.mean()) if len(v) else float("nan"), None, None, None)
    sem = stats.sem(v)
    # Seeds that agree exactly (a deterministic variant) have no spread: scipy's interval would be NaN.
    low, high = stats.t.interval(confidence, len(v) - 1, loc=v.mean(), scale=sem) if sem > 0 else (v.mean(),) * 2
    return Spread(len(v), float(v.mean()), float(v.std(ddof=1)), float(low), float(high))


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> float:
    """Two-sided p-value that variants a and b, right or wrong on the same images, are equally accurate."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"McNemar's test needs the same images: {a.shape} against {b.shape} results")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
