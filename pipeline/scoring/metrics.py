"""Metrics computed from predicted probabilities: pure functions, tested on inputs worked out by hand.

The classification metrics are scikit-learn's; cross-entropy and calibration are written here (see their notes).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn import metrics as sk

from pipeline.scoring.stats import wilson_interval

EPS = 1e-7
GAP_TEST_SETS = ("mnist", "emnist_digits")  # the generalisation gap: from MNIST's test images to other writers' digits


def accuracy(probs: np.ndarray, y_true: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == y_true)) if len(y_true) else float("nan")


def cross_entropy(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class, clipped like Keras so a confident mistake is finite.

    Not scikit-learn's `log_loss`: that clips at the dtype's machine epsilon (1.2e-7 for float32, 2.2e-16 for
    float64) instead of Keras's 1e-7, which moves the loss of a model with confident mistakes in the third
    decimal. Where no probability is clipped the two agree (tests/scoring/test_metrics.py)."""
    if not len(y_true):
        return float("nan")
    p = np.clip(probs[np.arange(len(y_true)), y_true], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def misclassified_by_confidence(probs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Indices of the mistakes, the most confident wrong answer first (stable for ties)."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class; every class has its row, present in y_true or not."""
    return sk.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def row_normalised(cm: np.ndarray) -> np.ndarray:
    """Each true class's row as fractions (an empty row stays zero)."""
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall (= per-class accuracy), F1 and support per class; 0 where undefined."""
    # scikit-learn scores pairs of labels; a confusion matrix is one (true, predicted) pair per cell, weighted by
    # the cell's count, so the images need not be at hand.
    true, predicted = np.indices(cm.shape)
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        true.ravel(), predicted.ravel(), labels=np.arange(len(cm)), sample_weight=cm.ravel(), zero_division=0
    )
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def top_k_accuracy(probs: np.ndarray, y_true: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the k most probable (three or more classes). Of classes tied at
    the k-th place, scikit-learn counts the higher class index as in the top k."""
    return sk.top_k_accuracy_score(y_true, probs, k=k, labels=np.arange(probs.shape[1]))


def reliability(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin: mean confidence, accuracy and count of the predictions that fall in it."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    safe = np.maximum(count, 1)
    return {
        "confidence": np.bincount(which, weights=confidence, minlength=bins) / safe,
        "accuracy": np.bincount(which, weights=correct.astype(float), minlength=bins) / safe,
        "count": count,
        "edges": np.linspace(0, 1, bins + 1),
    }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """Sum over bins of |accuracy - confidence| weighted by the bin's share of predictions."""
    return calibration_error(reliability(probs, y_true, bins))


def calibration_error(rel: dict[str, np.ndarray]) -> float:
    """ECE from reliability bins already computed (see `reliability`)."""
    share = rel["count"] / max(1, rel["count"].sum())
    return float(np.sum(share * np.abs(rel["accuracy"] - rel["confidence"])))


def most_confused_pairs(cm: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as (true, predicted, count), largest first; empty cells left out."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    pairs = [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape))]
    return [p for p in pairs if p[2] > 0]


def summary_scores(
    probs: np.ndarray, y_true: np.ndarray, cm: np.ndarray | None = None, top_k: int = 5
) -> dict[str, float]:
    """The headline numbers per test set, as DVC metrics and MLflow metrics (`cm`, if the caller has it); the
    accuracy with its 95% interval, so that a difference between two runs can be set against it."""
    if cm is None:
        cm = confusion_matrix(y_true, probs.argmax(axis=1), probs.shape[1])
    scores = per_class_scores(cm)
    correct = int(np.trace(cm))
    low, high = wilson_interval(correct, len(y_true)) if len(y_true) else (float("nan"), float("nan"))
    result = {
        "accuracy": accuracy(probs, y_true),
        "accuracy_ci_low": low,  # the 95% Wilson interval over the test images (pipeline/scoring/stats.py)
        "accuracy_ci_high": high,
        "loss": cross_entropy(probs, y_true),
        "macro_precision": float(scores["precision"].mean()),
        "macro_recall": float(scores["recall"].mean()),
        "macro_f1": float(scores["f1"].mean()),
        "ece": expected_calibration_error(probs, y_true),
        "images": len(y_true),
    }
    if probs.shape[1] > 10:
        result[f"top{top_k}_accuracy"] = top_k_accuracy(probs, y_true, top_k)
    return result


def generalisation_gap(accuracy: Mapping[str, float | None]) -> float | None:
    """MNIST's accuracy minus EMNIST digits' (`accuracy` by test set): how much of it is lost on digits written and
    scanned by others; None unless both were measured."""
    mnist, emnist = (accuracy.get(name) for name in GAP_TEST_SETS)
    return None if mnist is None or emnist is None else mnist - emnist
