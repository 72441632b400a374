"""What predict asks of a model: its top classes, and whether an answer deserves a look."""

from __future__ import annotations

import numpy as np

from pipeline.modeling.classifier import UNSURE_BELOW, top_k, unsure


def test_an_answer_is_unsure_below_the_threshold_and_sure_at_it():
    assert unsure(np.array([UNSURE_BELOW - 0.001, 1 - UNSURE_BELOW + 0.001]))
    assert not unsure(np.array([UNSURE_BELOW, 1 - UNSURE_BELOW]))


def test_top_k_in_order_of_probability_ties_by_class_order():
    assert top_k(np.array([0.2, 0.5, 0.2, 0.1]), ["a", "b", "c", "d"], 3) == [("b", 0.5), ("a", 0.2), ("c", 0.2)]
