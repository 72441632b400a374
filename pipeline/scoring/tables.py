"""Tables: per-class scores, the classification report and the training history, as rows and as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as sk

from pipeline.scoring import metrics


def per_class_rows(cm: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class: precision, recall (= the class's accuracy), F1, support."""
    s = metrics.per_class_scores(cm)
    return [
        {
            "class": name,
            "precision": float(s["precision"][i]),
            "recall": float(s["recall"][i]),
            "f1": float(s["f1"][i]),
            "support": int(s["support"][i]),
        }
        for i, name in enumerate(class_names)
    ]


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> str:
    """scikit-learn's text report: precision, recall, F1 and support per class, accuracy, macro and
    support-weighted averages; every class listed, 0 where a score is undefined."""
    labels = np.arange(len(class_names))
    return sk.classification_report(
        y_true, y_pred, labels=labels, target_names=list(class_names), digits=4, zero_division=0
    )


def history_rows(history: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """One row per epoch, numbered from 1, with every metric the history holds for it."""
    return [{"epoch": i + 1, **{k: v[i] for k, v in history.items()}} for i in range(len(history["loss"]))]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
