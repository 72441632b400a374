"""Averaging runs' probabilities: the mean of runs that scored the same test set with the same classes, and a refusal
in one line naming the run that differs and how."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.scoring.ensemble import EnsembleError, Member, averaged, ensemble_scores

LABELS = np.array([0, 1, 1, 0])


def member(run: str, probs, labels=LABELS, source="MNIST", class_names=("a", "b")) -> Member:
    return Member(run, source, class_names, np.asarray(labels), np.asarray(probs, float))


def test_the_mean_of_the_runs_probabilities_and_its_scores():
    a = member("seed=1", [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
    b = member("seed=2", [[0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])
    probs = averaged("mnist", [a, b])
    np.testing.assert_allclose(probs, [[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
    assert ensemble_scores(probs, LABELS)["accuracy"] == 1.0  # a erred on image 1, b on none: the mean on none


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (
            member("seed=2", np.full((4, 2), 0.5), class_names=("x", "y")),
            r"has classes x, y, run seed=1 a, b",
        ),
        (member("seed=2", np.full((4, 2), 0.5), source="EMNIST"), r"evaluated 'EMNIST', run seed=1 'MNIST'"),
        (
            member("seed=2", np.full((2, 2), 0.5), labels=[0, 1]),
            r"evaluated 2 images, run seed=1 4 \(evaluate.limit\?\)",
        ),
        (
            member("seed=2", np.full((4, 2), 0.5), labels=[1, 1, 1, 0]),
            r"has other labels than run seed=1 for the same images \(the prepared data changed between them\)",
        ),
    ],
)
def test_runs_that_did_not_evaluate_the_same_test_set_are_refused_in_one_line(other, message):
    first = member("seed=1", np.full((4, 2), 0.5))
    with pytest.raises(
        EnsembleError, match=rf"^mnist: run seed=2 {message} — only runs that evaluated the same test set"
    ) as e:
        averaged("mnist", [first, other])
    assert "\n" not in str(e.value)


def test_no_runs_are_refused():
    with pytest.raises(EnsembleError, match="mnist: no run evaluated it"):
        averaged("mnist", [])
