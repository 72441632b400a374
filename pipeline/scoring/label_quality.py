"""Which given labels of a test set are likely wrong: a review queue, every image ranked by cleanlab's label quality
score on a model's out-of-sample probabilities, the first ones kept with cleanlab's confident-learning verdict on
each, and what the queue and the flagged images mean for the counts.

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
from pipeline.data.datasets import Dataset

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
    """One set of images' review queue, most likely wrong first: the `review` images of lowest label quality score,
    and after them any that cleanlab flags further down (a flagged label is never left out of the queue)."""

    positions: np.ndarray  # in the evaluated set (0..n-1)
    scores: np.ndarray  # cleanlab's label quality score of each: the lower, the more likely the label is wrong
    suggested: np.ndarray  # the class the model gives the highest probability
    flagged: np.ndarray  # bool, each: cleanlab's `find_label_issues` flags it (its verdict, kept beside the rank)


def label_issues(probs: np.ndarray, labels: np.ndarray, review: int) -> LabelIssues:
    """The review queue: every image ranked by cleanlab's label quality score (self-confidence), the first `review`
    kept, whatever the filter says, and cleanlab's `find_label_issues` verdict on each. One process (n_jobs=1): the
    answer is the same, and the cores are the pipeline's to share."""
    # Here, not on top: cleanlab takes ~2 s to import, which report (it reads COUNTS_FILE) need not wait for.
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if len(labels) == 0:
        return LabelIssues(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, bool))
    labels = np.asarray(labels, dtype=np.int64)
    scores = get_label_quality_scores(labels, probs, method=RANKED_BY)
    is_flagged = find_label_issues(labels, probs, n_jobs=1)
    ranked = np.argsort(scores, kind="stable")  # ties in the order of the set: the same input, the same queue
    beyond = ranked[review:]
    positions = np.concatenate([ranked[:review], beyond[is_flagged[beyond]]]).astype(np.int64)
    return LabelIssues(positions, scores[positions], probs[positions].argmax(axis=1), is_flagged[positions])


def issue_counts(issues: LabelIssues, probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """What the queue and the flagged images mean for a set's scores: `queue_errors`, the model's errors the queue
    holds; `accuracy_excluding_flagged`, the accuracy on the images not flagged: not a corrected accuracy (a
    flagged image's true label is not known, only suspected)."""
    wrong = probs.argmax(axis=1) != labels
    flagged = issues.positions[issues.flagged]
    kept = np.ones(len(labels), bool)
    kept[flagged] = False
    return {
        "images": len(labels),
        "flagged": len(flagged),
        "errors": int(wrong.sum()),
        "flagged_errors": int(wrong[flagged].sum()),
        "accuracy_excluding_flagged": round(float(1 - wrong[kept].mean()), 6) if kept.any() else 0.0,
        "queue": len(issues.positions),
        "queue_errors": int(wrong[issues.positions].sum()),
    }


def issues_csv(
    issues: LabelIssues, probs: np.ndarray, labels: np.ndarray, official_rows: np.ndarray, class_names: Sequence[str]
) -> str:
    """label_issues.csv: the review queue, a row per image, most likely wrong first; `index` is its row in the
    official file, `flagged` cleanlab's verdict (true/false). Fixed decimals, so the same queue gives the same bytes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "given_label", "suggested_label", "score", "flagged"] + [f"p_{c}" for c in class_names])
    for i, score, suggested, flagged in zip(issues.positions, issues.scores, issues.suggested, issues.flagged):
        writer.writerow(
            [
                int(official_rows[i]),
                class_names[labels[i]],
                class_names[suggested],
                f"{score:.6f}",
                str(bool(flagged)).lower(),
            ]
            + [f"{p:.6f}" for p in probs[i]]
        )
    return out.getvalue()


def test_set_issues(
    name: str, ds: Dataset, probs: np.ndarray, labels: np.ndarray, source: str, review: int
) -> LabelIssues:
    """A test set's review queue, once its probabilities are checked against it: evaluate scored the first
    len(labels) images (evaluate.limit), with the labels of the prepared file."""
    check_probabilities(probs, labels, ds.num_classes, source)
    if len(labels) > len(ds.y_test) or not np.array_equal(labels, ds.y_test[: len(labels)]):
        raise ProbabilitiesError(
            f"{source}: its labels are not those of test set {name}'s first {len(labels)} images — the prepared "
            "data changed since evaluate ran: run `dvc repro`"
        )
    return label_issues(probs, labels, review)
