"""Which K-fold fold each training image is in: stratified by label (every fold has each class's share) and seeded,
so that every fold job of a sweep, wherever it runs, computes the same division on its own."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from pipeline.core.errors import UserError


def fold_of(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0 … folds-1) of every image, each image in exactly one. scikit-learn's StratifiedKFold, shuffled
    by `seed`; a class with fewer images than folds leaves some folds without it (scikit-learn warns)."""
    if len(labels) < folds:
        raise UserError(f"{len(labels)} training images cannot be divided into {folds} folds (kfold.folds)")
    assignment = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        assignment[held_out] = k
    return assignment
