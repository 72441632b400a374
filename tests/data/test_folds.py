"""K-fold assignment: every training image in exactly one fold, each class spread over the folds, the same for the
same seed."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.errors import UserError
from pipeline.data.folds import fold_of

LABELS = np.repeat(np.arange(10, dtype=np.uint8), [30, 25, 20, 40, 10, 15, 35, 50, 5, 20])[::-1]


def test_every_image_is_in_exactly_one_fold_and_the_folds_are_even():
    folds = fold_of(LABELS, 5, seed=0)
    assert folds.shape == LABELS.shape and set(folds) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.sum() == len(LABELS) and sizes.max() - sizes.min() <= 1


def test_each_class_is_spread_over_the_folds():
    folds = fold_of(LABELS, 5, seed=0)
    for c in range(10):
        per_fold = np.bincount(folds[LABELS == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)


def test_the_same_seed_gives_the_same_folds_and_another_seed_others():
    assert np.array_equal(fold_of(LABELS, 5, seed=3), fold_of(LABELS, 5, seed=3))
    assert not np.array_equal(fold_of(LABELS, 5, seed=3), fold_of(LABELS, 5, seed=4))


def test_fewer_images_than_folds_is_a_users_error():
    with pytest.raises(UserError, match="3 training images cannot be divided into 5 folds"):
        fold_of(np.array([0, 1, 0]), 5, seed=0)
