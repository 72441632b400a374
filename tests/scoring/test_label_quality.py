"""Finding label errors: the review queue, ranked by cleanlab's label quality score on out-of-sample probabilities,
puts labels flipped on purpose first; its `flagged` column keeps cleanlab's verdict; the counts and the CSV say what
it found by each image's official row."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from pipeline.scoring.label_quality import (
    LabelIssues,
    ProbabilitiesError,
    check_probabilities,
    issue_counts,
    issues_csv,
    label_issues,
)
from tests.helpers.synthetic import synthetic_images


def flipped_bars(n: int, flipped_share: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-sample probabilities for n of the tests' bar images (blurred by noise, so that the model is ~99%
    accurate, as ours are on MNIST), whose labels have `flipped_share` of them changed to another class on purpose:
    (probabilities, the labels as given, the positions flipped). The model, trained on the labels as given, is a
    logistic regression on each image row's mean brightness, by 5-fold cross-validation: no image is scored by a
    model that saw it, as evaluate's test sets are."""
    rng = np.random.default_rng(seed)
    true = np.arange(n) % 10
    x = synthetic_images(true, seed).mean(axis=2) / 255 + rng.normal(0, 0.2, (n, 28))
    flipped = np.sort(rng.choice(n, round(n * flipped_share), replace=False))
    given = true.copy()
    given[flipped] = (true[flipped] + rng.integers(1, 10, len(flipped))) % 10
    probs = cross_val_predict(LogisticRegression(max_iter=1000), x, given, cv=5, method="predict_proba")
    return probs, given, flipped


def recall_precision(found: np.ndarray, flipped: np.ndarray) -> tuple[float, float]:
    hits = len(np.intersect1d(found, flipped))
    return hits / max(1, len(flipped)), hits / max(1, len(found))


def test_the_flipped_labels_come_first_in_the_queue():
    probs, given, flipped = flipped_bars(1000, 0.05, seed=0)
    assert (probs.argmax(axis=1) == given).mean() > 0.9  # the model learnt despite the flips
    queue = label_issues(probs, given, review=100)
    assert len(queue.positions) == 100  # whatever the filter flags
    # What the ranking reaches here (seeds 0-2): of the 50 flipped, 49-50 in the first 50 of the queue and all 50 in
    # the first 100, where cleanlab's filter flags 43-47 of them.
    assert len(np.intersect1d(queue.positions[:50], flipped)) >= 48
    assert len(np.intersect1d(queue.positions, flipped)) == 50


def test_the_flagged_column_keeps_cleanlab_s_verdict():
    probs, given, flipped = flipped_bars(1000, 0.05, seed=0)
    queue = label_issues(probs, given, review=100)
    flagged = queue.positions[queue.flagged]
    recall, precision = recall_precision(flagged, flipped)
    # What cleanlab's filter reaches here (seeds 0-2: recall 0.82, precision 1.0): fewer than the queue holds.
    assert recall >= 0.75, recall
    assert precision >= 0.9, precision
    alone = label_issues(probs, given, review=0)  # 0: cleanlab's flagged images alone
    assert alone.flagged.all() and set(alone.positions) == set(flagged)


def test_flags_almost_nothing_when_no_label_was_flipped():
    probs, given, flipped = flipped_bars(1000, 0.0, seed=0)
    assert len(flipped) == 0
    queue = label_issues(probs, given, review=100)
    assert len(queue.positions) == 100 and queue.flagged.sum() <= 5


def test_ranked_most_likely_wrong_first_with_the_model_s_suggestion():
    probs, given, _ = flipped_bars(1000, 0.05, seed=1)
    queue = label_issues(probs, given, review=100)
    given_probability = probs[queue.positions, given[queue.positions]]
    assert np.all(np.diff(given_probability) >= 0)  # self-confidence: the lowest probability of the label first
    np.testing.assert_allclose(queue.scores, given_probability)
    np.testing.assert_array_equal(queue.suggested, probs[queue.positions].argmax(axis=1))
    assert given_probability[-1] <= np.sort(probs[np.arange(1000), given])[100]  # no image left out ranks higher


def test_a_flagged_image_beyond_the_first_ones_is_added_at_the_end():
    probs, given, _ = flipped_bars(1000, 0.05, seed=0)
    queue = label_issues(probs, given, review=3)
    flagged = label_issues(probs, given, review=0).positions
    assert len(queue.positions) == len(set(queue.positions[:3]) | set(flagged))
    assert set(flagged) <= set(queue.positions) and queue.flagged[3:].all()


def hand_made() -> tuple[np.ndarray, np.ndarray, LabelIssues]:
    """Four images of classes a, b; the model errs on 1 and 3. The queue holds 1 (given b, 0.1), 3 (given a, 0.2)
    and 2 (given a, 0.4); cleanlab flags 1 and 2."""
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    labels = np.array([0, 1, 0, 0])
    issues = LabelIssues(np.array([1, 3, 2]), np.array([0.1, 0.2, 0.4]), np.array([0, 1, 1]), np.array([1, 0, 1], bool))
    return probs, labels, issues


def test_counts_name_the_flagged_errors_the_accuracy_excluding_them_and_the_queue_s_errors():
    probs, labels, issues = hand_made()
    counts = issue_counts(issues, probs, labels)
    # Errors: 1, 2 and 3; flagged among them: 1 and 2; left: 0 (right) and 3 (wrong); the queue holds all three.
    assert counts == {
        "images": 4,
        "flagged": 2,
        "errors": 3,
        "flagged_errors": 2,
        "accuracy_excluding_flagged": 0.5,
        "queue": 3,
        "queue_errors": 3,
    }


def test_csv_rows_are_official_rows_most_likely_wrong_first_with_the_verdict():
    probs, labels, issues = hand_made()
    text = issues_csv(issues, probs, labels, np.array([100, 205, 310, 415]), ("a", "b"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["index"], r["flagged"]) for r in rows] == [("205", "true"), ("415", "false"), ("310", "true")]
    assert rows[0] == {"index": "205", "given_label": "b", "suggested_label": "a", "score": "0.100000",
                       "flagged": "true", "p_a": "0.900000", "p_b": "0.100000"}  # fmt: skip
    assert issues_csv(issues, probs, labels, np.arange(4), ("a", "b")).count("\n") == 4


def test_no_images_still_give_a_csv_with_its_header():
    empty = label_issues(np.zeros((0, 2)), np.zeros(0, int), review=100)
    assert issues_csv(empty, np.zeros((0, 2)), np.zeros(0, int), np.zeros(0, int), ("a", "b")).startswith("index,")


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (np.full((3, 2), 0.5), r"p.npz: probabilities of shape \[3, 2\], expected \[3, 10\]"),
        (np.full((2, 10), 0.1), r"shape \[2, 10\], expected \[3, 10\]"),
        (np.full(30, 0.1), r"shape \[30\]"),
        (np.full((3, 10), 0.5), "do not sum to 1"),
    ],
)
def test_probabilities_that_do_not_fit_the_test_set_are_refused(probs, match):
    with pytest.raises(ProbabilitiesError, match=match):
        check_probabilities(probs, np.zeros(3, int), 10, "p.npz")
