"""Which given labels of a test set are likely wrong: cleanlab's confident learning on a model's out-of-sample
probabilities, the flagged images ranked, and what leaving them out does to the counts.

cleanlab does the finding and the scoring (`filter.find_label_issues`, `rank.get_label_quality_scores`); this module
only checks its input, orders its answer and names each image by its row in the official file."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import UserError

RANKED_BY = "self_confidence"  # the model's probability of the given label: lowest, most likely wrong
COUNTS_FILE = "label_issues.json"  # in paths.metrics: the label_issues stage writes it, report reads it


def found_files(folder: Path, name: str) -> tuple[Path, Path]:
    """Where the label_issues stage puts a test set's CSV and PDF (report copies them from there)."""
    return folder / f"{name}.csv", folder / f"{name}.pdf"


class ProbabilitiesError(UserError, ValueError):
    """A predictions file that does not fit its test set; the message names the file and what differs."""


def check_probabilities(probs: np.ndarray, labels: np.ndarray, num_classes: int, name: str) -> None:
    """One row of `num_classes` probabilities per label, each row summing to 1."""
    if probs.ndim != 2 or probs.shape != (len(labels), num_classes):
        raise ProbabilitiesError(
            f"{name}: probabilities of shape {list(probs.shape)}, expected [{len(labels)}, {num_classes}] "
            "(one row per test image, one column per class) — run the evaluate stage again (`dvc repro`)"
        )
    if len(labels) and not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        raise ProbabilitiesError(f"{name}: rows that do not sum to 1 — these are not probabilities")


@dataclass(frozen=True)
class LabelIssues:
    """The flagged images of one test set, most likely wrong first."""

    positions: np.ndarray  # in the evaluated test set (0..n-1)
    scores: np.ndarray  # cleanlab's label quality score of each: the lower, the more likely the label is wrong
    suggested: np.ndarray  # the class the model gives the highest probability


def label_issues(probs: np.ndarray, labels: np.ndarray) -> LabelIssues:
    """cleanlab's label issues, ranked by self-confidence. One process (n_jobs=1): the answer is the same, and the
    cores are the pipeline's to share."""
    # Here, not on top: cleanlab takes ~2 s to import, which report (it reads COUNTS_FILE) need not wait for.
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if len(labels) == 0:
        return LabelIssues(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    labels = np.asarray(labels, dtype=np.int64)
    positions = find_label_issues(labels, probs, return_indices_ranked_by=RANKED_BY, n_jobs=1)
    positions = np.asarray(positions, dtype=np.int64)
    scores = get_label_quality_scores(labels, probs, method=RANKED_BY)[positions]
    return LabelIssues(positions, scores, probs[positions].argmax(axis=1))


def issue_counts(issues: LabelIssues, probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """What the flagged images mean for a test set's scores. `accuracy_excluding_flagged` is the accuracy on the
    images not flagged: not a corrected accuracy (a flagged image's true label is not known, only suspected)."""
    wrong = probs.argmax(axis=1) != labels
    kept = np.ones(len(labels), bool)
    kept[issues.positions] = False
    return {
        "images": len(labels),
        "flagged": len(issues.positions),
        "errors": int(wrong.sum()),
        "flagged_errors": int(wrong[issues.positions].sum()),
        "accuracy_excluding_flagged": round(float(1 - wrong[kept].mean()), 6) if kept.any() else 0.0,
    }


def issues_csv(
    issues: LabelIssues, probs: np.ndarray, labels: np.ndarray, official_rows: np.ndarray, class_names: Sequence[str]
) -> str:
    """label_issues.csv: a row per flagged image, most likely wrong first; `index` is its row in the official file.
    Fixed decimals, so the same issues give the same bytes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "given_label", "suggested_label", "score"] + [f"p_{c}" for c in class_names])
    for i, score, suggested in zip(issues.positions, issues.scores, issues.suggested):
        writer.writerow(
            [int(official_rows[i]), class_names[labels[i]], class_names[suggested], f"{score:.6f}"]
            + [f"{p:.6f}" for p in probs[i]]
        )
    return out.getvalue()
