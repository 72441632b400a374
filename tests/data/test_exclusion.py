"""data.exclude_label_issues: a label-issues list, as kfold_join writes it, read back and mapped from the official
file's rows to the training set's positions; a list that cannot be this training set's is refused by one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.data.exclusion import ExclusionError, excluded_positions, listed_images
from pipeline.scoring.label_quality import LabelIssues, issues_csv

NAMES = ("a", "b", "c")
LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1], dtype=np.uint8)
# The prepared training set's images in another order than the official file's, as EMNIST's split leaves them.
OFFICIAL_ROWS = np.array([70, 12, 5, 33, 40, 2, 19, 8])


def written_list(
    folder: Path, positions: list[int], rows: np.ndarray = OFFICIAL_ROWS, flagged: list[bool] | None = None
) -> Path:
    """The review queue the label-issues writer makes of the images at `positions`, most likely wrong first, all
    flagged unless `flagged` says otherwise."""
    probs = np.full((len(LABELS), 3), 1 / 3)
    n = len(positions)
    verdict = np.ones(n, bool) if flagged is None else np.array(flagged, bool)
    issues = LabelIssues(np.array(positions, int), np.linspace(0.1, 0.2, n), np.zeros(n, int), verdict)
    path = folder / "mnist_train.csv"
    path.write_text(issues_csv(issues, probs, LABELS, rows, NAMES), "utf-8")
    return path


def positions(path: Path) -> np.ndarray:
    return excluded_positions(path, *listed_images(path), OFFICIAL_ROWS, LABELS, NAMES, "train-images")


def test_the_listed_official_rows_become_the_positions_of_those_images(tmp_path):
    path = written_list(tmp_path, [6, 1, 4])
    rows, given = listed_images(path)
    assert rows.tolist() == [19, 12, 40] and given == ["a", "b", "b"]
    assert positions(path).tolist() == [1, 4, 6]


def test_of_a_review_queue_only_the_flagged_rows_are_left_out(tmp_path):
    path = written_list(tmp_path, [6, 1, 4, 0], flagged=[True, False, True, False])
    rows, given = listed_images(path)
    assert rows.tolist() == [19, 40] and given == ["a", "b"]
    assert positions(path).tolist() == [4, 6]


def test_a_list_without_the_flagged_column_leaves_out_every_row(tmp_path):
    path = tmp_path / "checked_by_eye.csv"
    path.write_text("index,given_label\n19,a\n12,b\n", "utf-8")
    assert positions(path).tolist() == [1, 6]


def test_an_empty_list_leaves_nothing_out(tmp_path):
    assert positions(written_list(tmp_path, [])).tolist() == []


def test_a_row_outside_the_training_set_is_refused_naming_the_file_and_the_row(tmp_path):
    path = written_list(tmp_path, [0, 3], rows=np.array([70, 12, 5, 99, 40, 2, 19, 8]))
    with pytest.raises(ExclusionError, match=r"mnist_train\.csv: row 99 is not in the training set \(rows of train-"):
        positions(path)


def test_a_row_with_another_label_is_refused_as_a_list_for_another_dataset(tmp_path):
    relabelled = LABELS.copy()
    relabelled[3] = 2
    path = written_list(tmp_path, [3])
    with pytest.raises(ExclusionError, match=r"row 33 of train-images is labelled c, the list says a — a list made"):
        excluded_positions(path, *listed_images(path), OFFICIAL_ROWS, relabelled, NAMES, "train-images")


def test_a_missing_file_names_the_setting_and_the_tool_that_writes_one(tmp_path):
    with pytest.raises(
        ExclusionError, match=r"data\.exclude_label_issues=.*nope\.csv: no such file — give .*pipeline\.kfold_join"
    ):
        listed_images(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "text, message",
    [
        ("row,label\n1,a\n", r"no column given_label, index — not a label-issues list"),
        ("index,given_label\n1,a\nseven,b\n", r"line 3: index 'seven' is not a row number"),
        ("", r"no column given_label, index"),
    ],
)
def test_a_csv_that_is_not_a_label_issues_list_is_refused_by_line(tmp_path, text, message):
    path = tmp_path / "list.csv"
    path.write_text(text, "utf-8")
    with pytest.raises(ExclusionError, match=message):
        listed_images(path)
