"""Metrics on small inputs worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss

from pipeline.scoring import metrics

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


# A 3-class example worked out by hand:
#   true 0: predicted 0, 0, 1      true 1: predicted 1, 1      true 2: predicted 0, 2, 2, 2
Y3 = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
P3 = np.array([0, 0, 1, 1, 1, 0, 2, 2, 2])
CM3 = np.array([[2, 1, 0], [0, 2, 0], [1, 0, 3]])


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y3, P3, 3), CM3)
    np.testing.assert_allclose(metrics.row_normalised(CM3)[0], [2 / 3, 1 / 3, 0])


def test_precision_recall_f1_by_hand():
    s = metrics.per_class_scores(CM3)
    np.testing.assert_allclose(s["precision"], [2 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(s["recall"], [2 / 3, 1.0, 3 / 4])
    np.testing.assert_allclose(s["f1"], [2 / 3, 0.8, 6 / 7])
    np.testing.assert_array_equal(s["support"], [3, 2, 4])


def test_undefined_precision_is_zero():
    s = metrics.per_class_scores(np.array([[1, 0], [1, 0]]))
    assert s["precision"][1] == 0 and s["f1"][1] == 0


def test_top_k():
    probs = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    assert metrics.top_k_accuracy(probs, np.array([0, 1, 2]), 1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(probs, np.array([0, 1, 2]), 2) == pytest.approx(2 / 3)


def test_ece_of_a_perfectly_calibrated_predictor_is_zero():
    # confidence 0.8 on every image, right on exactly 80% of them
    probs = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert metrics.expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_maximally_over_confident_predictor_is_one():
    probs = np.tile([1.0, 0.0], (10, 1))
    assert metrics.expected_calibration_error(probs, np.ones(10, int)) == pytest.approx(1.0)


def test_ece_mixes_bins_by_weight():
    # half at confidence 0.9 all right (gap 0.1), half at 0.6 all wrong (gap 0.6): ECE = 0.5*0.1 + 0.5*0.6
    probs = np.array([[0.9, 0.1]] * 2 + [[0.6, 0.4]] * 2)
    assert metrics.expected_calibration_error(probs, np.array([0, 0, 1, 1])) == pytest.approx(0.35)


def test_most_confused_pairs():
    assert metrics.most_confused_pairs(CM3, 5) == [(0, 1, 1), (2, 0, 1)]


def test_cross_entropy_clips_float32_at_keras_1e7_not_at_machine_epsilon():
    # scikit-learn's log_loss would clip this float32 probability at float32's epsilon, 1.19e-7
    probs = np.array([[1.0, 1e-9]], dtype=np.float32)
    assert math.isclose(metrics.cross_entropy(probs, np.array([1])), -math.log(1e-7), rel_tol=1e-6)


def test_cross_entropy_is_log_loss_where_nothing_is_clipped():
    assert math.isclose(metrics.cross_entropy(PROBS, Y), log_loss(Y, PROBS, labels=[0, 1, 2]), rel_tol=1e-12)


# Class 2 never occurs in the test labels and is predicted once, by mistake:
#   true 0: predicted 0, 2      true 1: predicted 1, 1
Y_ABSENT = np.array([0, 0, 1, 1])
PROBS_ABSENT = np.array([[0.6, 0.1, 0.3], [0.3, 0.2, 0.5], [0.1, 0.6, 0.3], [0.2, 0.7, 0.1]])
CM_ABSENT = np.array([[1, 0, 1], [0, 2, 0], [0, 0, 0]])


def test_a_class_absent_from_the_labels_keeps_its_row_and_scores_zero():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_ABSENT, PROBS_ABSENT.argmax(axis=1), 3), CM_ABSENT)
    s = metrics.per_class_scores(CM_ABSENT)
    np.testing.assert_allclose(s["precision"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(s["recall"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(s["f1"], [2 / 3, 1.0, 0.0])
    np.testing.assert_array_equal(s["support"], [2, 2, 0])


def test_a_class_never_predicted_or_present_still_counts_in_the_macro_averages():
    scores = metrics.summary_scores(PROBS_ABSENT, Y_ABSENT)
    assert scores["macro_precision"] == pytest.approx(2 / 3)
    assert scores["macro_recall"] == pytest.approx(0.5)
    assert scores["macro_f1"] == pytest.approx(5 / 9)
    assert scores["accuracy"] == 0.75 and scores["images"] == 4
    # 3 of 4 right: the 95% Wilson interval (pipeline/scoring/stats.py), worked out by hand as 0.30064 to 0.95441
    assert (scores["accuracy_ci_low"], scores["accuracy_ci_high"]) == (
        pytest.approx(0.30064, abs=1e-5),
        pytest.approx(0.95441, abs=1e-5),
    )


def test_top_k_with_a_class_absent_from_the_labels():
    # image 1 (true 0) ranks 2, 0, 1: a miss in the top 1, a hit in the top 2
    assert metrics.top_k_accuracy(PROBS_ABSENT, Y_ABSENT, 1) == pytest.approx(0.75)
    assert metrics.top_k_accuracy(PROBS_ABSENT, Y_ABSENT, 2) == 1.0


def test_top_k_ties_at_the_kth_place_go_to_the_higher_class():
    # classes 1 and 2 tie for second place: class 2 is counted in the top 2, class 1 is not
    probs = np.array([[0.4, 0.3, 0.3]])
    assert metrics.top_k_accuracy(probs, np.array([2]), 2) == 1.0
    assert metrics.top_k_accuracy(probs, np.array([1]), 2) == 0.0


def test_the_generalisation_gap_is_mnists_accuracy_minus_emnist_digits_when_both_were_measured():
    assert metrics.generalisation_gap({"mnist": 0.99, "emnist_digits": 0.9, "emnist_balanced": 0.5}) == 0.99 - 0.9
    assert metrics.generalisation_gap({"emnist_digits": 0.9, "mnist": 0.99}) == 0.99 - 0.9  # by name, not by order
    assert metrics.generalisation_gap({"mnist": 0.99, "emnist_digits": None}) is None  # a run that did not log it
    assert metrics.generalisation_gap({"mnist": 0.99}) is None
