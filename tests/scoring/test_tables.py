"""Tables from a confusion matrix worked out by hand (see test_metrics)."""

from __future__ import annotations

import numpy as np

from pipeline.scoring.tables import classification_report, per_class_rows, to_csv

CM3 = np.array([[2, 1, 0], [0, 2, 0], [1, 0, 3]])


def pairs(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) classes of the images a confusion matrix counts."""
    true, predicted = np.indices(cm.shape)
    return np.repeat(true.ravel(), cm.ravel()), np.repeat(predicted.ravel(), cm.ravel())


def test_per_class_rows_and_report():
    rows = per_class_rows(CM3, ["a", "b", "c"])
    assert rows[2] == {"class": "c", "precision": 1.0, "recall": 0.75, "f1": 6 / 7, "support": 4}
    text = classification_report(*pairs(CM3), ["a", "b", "c"])
    assert "           c     1.0000    0.7500    0.8571         4" in text
    # macro recall = (2/3 + 1 + 3/4) / 3; weighted precision = (3*2/3 + 2*2/3 + 4*1) / 9; weighted recall = 7/9
    assert "    accuracy                         0.7778         9" in text
    assert "   macro avg     0.7778    0.8056    0.7746         9" in text
    assert "weighted avg     0.8148    0.7778    0.7810         9" in text


def test_csv():
    assert to_csv([{"a": 1, "b": "x"}]) == "a,b\n1,x\n"


def test_report_of_a_class_absent_from_the_test_set():
    # class c never occurs and is predicted once: zero scores, counted in the macro average only
    cm = np.array([[1, 0, 1], [0, 2, 0], [0, 0, 0]])
    rows = per_class_rows(cm, ["a", "b", "c"])
    assert rows[2] == {"class": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    text = classification_report(*pairs(cm), ["a", "b", "c"])
    assert "           c     0.0000    0.0000    0.0000         0" in text
    # macro: precision (1 + 1 + 0) / 3, recall (1/2 + 1 + 0) / 3, F1 (2/3 + 1 + 0) / 3; weighted by support 2, 2, 0
    assert "   macro avg     0.6667    0.5000    0.5556         4" in text
    assert "weighted avg     1.0000    0.7500    0.8333         4" in text
