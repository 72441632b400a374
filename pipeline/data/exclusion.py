"""Which training images a label-issues list leaves out (`data.exclude_label_issues`): the list names images by
their row in the official file, as `python -m pipeline.kfold_join` wrote it; training needs their positions in
the prepared training set."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pipeline.core.errors import UserError

SETTING = "data.exclude_label_issues"


class ExclusionError(UserError, ValueError):
    """A list that cannot be the training set's: the message names the file, the row and what to do."""


def listed_images(path: Path) -> tuple[np.ndarray, list[str]]:
    """The official rows (`index`) and given labels (`given_label`) of a label-issues CSV, in its order: of a
    review queue with its `flagged` column (as kfold_join writes it), the rows cleanlab flags; of a list without
    it (one a reviewer made, of the labels they found wrong), every row."""
    if not path.is_file():
        raise ExclusionError(
            f"{SETTING}={path}: no such file — give the <dataset>_train.csv that `python -m pipeline.kfold_join` "
            "wrote (docs/data.md)"
        )
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"index", "given_label"} - set(reader.fieldnames or ())
        if missing:
            raise ExclusionError(
                f"{path}: no column {', '.join(sorted(missing))} — not a label-issues list "
                "(`python -m pipeline.kfold_join` writes one)"
            )
        rows, labels = [], []
        verdict = "flagged" in (reader.fieldnames or ())
        for line, record in enumerate(reader, start=2):
            if verdict and record["flagged"] != "true":
                continue
            try:
                rows.append(int(record["index"]))
            except ValueError:
                raise ExclusionError(f"{path}, line {line}: index {record['index']!r} is not a row number") from None
            labels.append(record["given_label"])
    return np.asarray(rows, dtype=np.int64), labels


def excluded_positions(
    path: Path,
    rows: np.ndarray,
    given: list[str],
    train_rows: np.ndarray,
    y_train: np.ndarray,
    class_names: tuple[str, ...],
    train_file: str,
) -> np.ndarray:
    """The positions in the prepared training set of the listed official `rows`, sorted. Each must be a training
    image and carry the list's given label there: a list made for another dataset, or another split of it, is
    refused rather than silently leaving out other images."""
    position_of = {int(row): i for i, row in enumerate(train_rows)}
    positions = []
    for row, label in zip(rows, given):
        if int(row) not in position_of:
            raise ExclusionError(
                f"{path}: row {row} is not in the training set (rows of {train_file}) — "
                "a list made for another dataset? Join the folds of this one (docs/data.md)"
            )
        i = position_of[int(row)]
        if class_names[y_train[i]] != label:
            raise ExclusionError(
                f"{path}: row {row} of {train_file} is labelled {class_names[y_train[i]]}, the list says {label} — "
                "a list made for another dataset? Join the folds of this one (docs/data.md)"
            )
        positions.append(i)
    return np.unique(np.asarray(positions, dtype=np.int64))
