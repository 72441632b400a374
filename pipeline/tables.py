"""Tables: per-class scores and the classification report, as rows and as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline import metrics


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


def classification_report(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as text laid out like scikit-learn's report, with macro and support-weighted averages.

    Not `sklearn.metrics.classification_report`, which takes the labels rather than these rows and prints
    narrower columns, `f1-score`, no `class` header and an accuracy row."""
    support = np.array([r["support"] for r in rows], dtype=float)
    lines = [f"{'class':>12} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>10}", ""]
    for r in rows:
        lines.append(f"{r['class']:>12} {r['precision']:10.4f} {r['recall']:10.4f} {r['f1']:10.4f} {r['support']:10d}")
    lines.append("")
    for label, weights in (("macro avg", np.ones_like(support)), ("weighted avg", support)):
        w = weights / max(weights.sum(), 1)
        avg = {k: float(sum(r[k] * wi for r, wi in zip(rows, w))) for k in ("precision", "recall", "f1")}
        lines.append(
            f"{label:>12} {avg['precision']:10.4f} {avg['recall']:10.4f} {avg['f1']:10.4f} {int(support.sum()):10d}"
        )
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
