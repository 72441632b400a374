"""Metrics on small inputs worked out by hand."""

from __future__ import annotations

import math

import numpy as np

from pipeline import metrics

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.05, 0.05, 0.9]])
Y = np.array([0, 1, 2, 1])


def test_accuracy():
    assert metrics.accuracy(PROBS, Y) == 0.5


def test_cross_entropy():
    expected = -(math.log(0.7) + math.log(0.8) + math.log(0.1) + math.log(0.05)) / 4
    assert math.isclose(metrics.cross_entropy(PROBS, Y), expected, rel_tol=1e-6)


def test_cross_entropy_of_a_certain_mistake_is_finite():
    assert math.isclose(metrics.cross_entropy(np.array([[1.0, 0.0]]), np.array([1])), -math.log(1e-7), rel_tol=1e-6)


def test_mistakes_most_confident_first():
    # mistakes: #2 (predicted 0 at 0.6), #3 (predicted 2 at 0.9)
    assert metrics.misclassified_by_confidence(PROBS, Y).tolist() == [3, 2]
