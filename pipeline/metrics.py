"""Metrics computed from predicted probabilities: pure functions, tested on inputs worked out by hand."""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def accuracy(probs: np.ndarray, y_true: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == y_true)) if len(y_true) else float("nan")


def cross_entropy(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class, clipped like Keras so a confident mistake is finite."""
    if not len(y_true):
        return float("nan")
    p = np.clip(probs[np.arange(len(y_true)), y_true], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def misclassified_by_confidence(probs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Indices of the mistakes, the most confident wrong answer first (stable for ties)."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]
