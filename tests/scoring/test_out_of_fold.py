"""Joining a K-fold sweep's out-of-fold predictions: good folds give every image its own fold's probabilities;
folds that do not cover the training set exactly once, or ran with other settings, are refused with what is wrong."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.scoring.out_of_fold import (
    FoldPredictions,
    FoldsError,
    fold_settings,
    join_folds,
    read_fold,
    write_fold,
)

N, K = 12, 3
SETTINGS = {"seed": 42, "kfold.folds": K, "kfold.seed": 0, "data.name": "mnist"}


def folds() -> list[FoldPredictions]:
    """Fold k holds the images k, k+3, k+6, k+9; its probabilities say which fold predicted them."""
    found = []
    for k in range(K):
        positions = np.arange(k, N, K)
        probs = np.full((len(positions), 4), 0.1)
        probs[:, k] = 0.7
        found.append(FoldPredictions(k, K, positions, positions % 4, probs, SETTINGS, f"sweep/{k}/out_of_fold.npz"))
    return found


def test_good_folds_give_every_image_its_folds_probabilities():
    probs, labels = join_folds(folds()[::-1], N, "sweep")  # in any order
    assert np.array_equal(probs.argmax(axis=1), np.arange(N) % K)
    assert np.array_equal(labels, np.arange(N) % 4)


def test_a_fold_file_reads_back_as_written(tmp_path):
    fold = replace(folds()[1], source=str(tmp_path / "out_of_fold.npz"))
    write_fold(tmp_path / "out_of_fold.npz", fold)
    back = read_fold(tmp_path / "out_of_fold.npz")
    assert (back.fold, back.folds, back.settings, back.source) == (1, K, SETTINGS, fold.source)
    assert np.array_equal(back.positions, fold.positions) and np.array_equal(back.probs, fold.probs)


def test_the_settings_leave_out_the_fold_and_the_job_folders():
    flat = {"seed": 1, "kfold.fold": 2, "paths.models": "multirun/x/2/models", "paths.prepared": "data/prepared"}
    assert fold_settings(flat) == {"seed": 1, "paths.prepared": "data/prepared"}


def refused(found: list[FoldPredictions], images: int = N) -> str:
    with pytest.raises(FoldsError) as err:
        join_folds(found, images, "sweep")
    return str(err.value)


def test_no_folds_are_refused():
    assert refused([]) == "sweep: no out_of_fold.npz found — run the folds first (`python -m pipeline.kfold -m …`)"


def test_a_missing_fold_is_refused_with_the_command_that_runs_it():
    assert refused(folds()[:2]) == (
        "sweep: fold 2 of 3 missing — run it with the same settings: "
        "`python -m pipeline.kfold -m kfold.fold=2 hydra.sweep.dir=sweep`"
    )
    assert "folds 0,2 of 3 missing — run them" in refused(folds()[1:2])


def test_a_fold_twice_is_refused():
    found = folds()
    assert refused([*found, replace(found[1], source="other/1/out_of_fold.npz")]) == (
        "fold 1 is there twice: sweep/1/out_of_fold.npz and other/1/out_of_fold.npz — join one sweep's folds"
    )


def test_folds_that_overlap_are_refused():
    found = folds()
    found[2] = replace(found[2], positions=np.array([2, 5, 8, 0]))  # 0 is fold 0's; 11 is in none
    assert refused(found) == (
        "1 training images are in more than one fold (image 0: folds 0, 2) — the folds were divided differently"
    )


def test_an_image_in_no_fold_is_refused():
    found = folds()
    found[0] = replace(found[0], positions=found[0].positions[:-1], probs=found[0].probs[:-1])
    assert refused(found) == "1 of the 12 training images are in no fold (the first: image 9)"


def test_a_fold_of_another_training_set_is_refused():
    assert refused(folds(), images=10) == "sweep/1/out_of_fold.npz: image 10 is not one of the 10 training images"


@pytest.mark.parametrize(
    ("changed", "said"),
    [({"seed": 7}, "seed=7 against 42"), ({"kfold.seed": 1}, "kfold.seed=1 against 0")],
)
def test_a_fold_run_with_other_settings_is_refused_naming_them(changed, said):
    found = folds()
    found[1] = replace(found[1], settings={**SETTINGS, **changed})
    assert refused(found) == (
        "fold 1 (sweep/1/out_of_fold.npz) was run with other settings than fold 0 (sweep/0/out_of_fold.npz): "
        f"{said} — join the folds of one sweep"
    )
