"""The K-fold join on the tests' tiny setup, from fold files written here (the folds' training is test_kfold.py's):
labels flipped on purpose in the training set are found by their official rows, written and logged to the sweep's
parent run, and still first when several sweeps are averaged; folds that cannot be joined are one line and exit 1,
and nothing is written."""

from __future__ import annotations

import csv
from pathlib import Path

import mlflow
import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from pipeline import kfold_join
from pipeline.core.files import read_json, write_json
from pipeline.data.datasets import load_dataset, prepared_path, save_dataset
from pipeline.data.folds import fold_of
from pipeline.scoring.out_of_fold import FOLD_FILE, FoldPredictions, fold_settings, read_fold, write_fold
from pipeline.sweeps.callback import SWEEP_FILE
from pipeline.tracking.runs import flatten
from pipeline.tracking.store import connect

K = 3
FLIPPED = [7, 120, 251]  # positions in the 300-image training set
ROWS = 1000 + 3 * np.arange(300)  # official rows that are not the positions


def write_folds(cfg: DictConfig, sweep: Path) -> None:
    """The prepared training set with FLIPPED labels changed and official rows ROWS, and K fold files as the fold
    jobs would write them: confident probabilities of the true class."""
    path = prepared_path(cfg.paths.prepared, cfg.data.name)
    ds = load_dataset(path)
    given = ds.y_train.copy()
    given[FLIPPED] = (given[FLIPPED] + 1) % 10
    save_dataset(path, ds.__class__(**{**ds.__dict__, "y_train": given, "train_rows": ROWS}))
    settings = fold_settings(flatten(OmegaConf.to_container(cfg, resolve=True)))
    folds = fold_of(given, K, cfg.kfold.seed)
    for k in range(K):
        positions = np.flatnonzero(folds == k)
        probs = np.full((len(positions), 10), 0.02)
        probs[np.arange(len(positions)), ds.y_train[positions]] = 0.82
        fold = FoldPredictions(k, K, positions, given[positions], probs, settings, "")
        write_fold(sweep / str(k) / FOLD_FILE, fold)


@pytest.fixture
def sweep(tiny) -> tuple[Path, str]:
    """A K-fold sweep's folder as its jobs leave it, with its parent run; the folder and the run's id."""
    cfg = OmegaConf.merge(tiny, {"kfold": {"folds": K}, "label_issues": {"max_shown": 2}})
    folder = Path("multirun/kfold")
    write_folds(cfg, folder)
    connect(cfg.tracking)
    parent = mlflow.MlflowClient().create_run(mlflow.get_experiment_by_name(cfg.tracking.experiment).experiment_id)
    write_json(folder / SWEEP_FILE, {"parent_run_id": parent.info.run_id, "varied": ["kfold.fold"]})
    return folder, parent.info.run_id


def test_the_join_finds_the_flipped_training_labels_by_their_official_rows(sweep, capsys):
    folder, parent = sweep
    assert kfold_join.main([str(folder)]) == 0
    out = folder / "label_issues"
    rows = list(csv.DictReader((out / "mnist_train.csv").open()))
    assert len(rows) == 100  # label_issues.review, the flipped first
    assert sorted(int(r["index"]) for r in rows[:3]) == ROWS[FLIPPED].tolist()
    assert [r["flagged"] for r in rows[:4]] == ["true", "true", "true", "false"]
    assert all(int(r["given_label"]) == (int(r["suggested_label"]) + 1) % 10 for r in rows[:3])
    assert (out / "mnist_train.pdf").read_bytes()[:5] == b"%PDF-"
    counts = {"images": 300, "flagged": 3, "errors": 3, "flagged_errors": 3, "accuracy_excluding_flagged": 1.0,
              "queue": 100, "queue_errors": 3}  # fmt: skip
    assert read_json(out / "label_issues.json") == {"mnist_train": counts}
    assert "label_issues: mnist_train: review queue of 100 of 300 labels, 3 of them" in capsys.readouterr().out
    client = mlflow.MlflowClient()
    assert client.get_run(parent).data.metrics["label_issues.mnist_train.flagged"] == 3
    logged = {f.path for f in client.list_artifacts(parent, "label_issues")}
    assert logged == {f"label_issues/{f}" for f in ("mnist_train.csv", "mnist_train.pdf", "label_issues.json")}


def ends_as_user_error(folder: Path, user_error) -> str:
    _, err = user_error(lambda: kfold_join.main([str(folder)]))
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (folder / "label_issues").exists()
    return err


def test_a_missing_fold_is_one_line_and_nothing_written(sweep, user_error):
    folder, _ = sweep
    (folder / "1" / FOLD_FILE).unlink()
    assert "fold 1 of 3 missing — run it with the same settings" in ends_as_user_error(folder, user_error)


def test_a_fold_from_another_sweep_is_one_line_and_nothing_written(sweep, user_error):
    folder, _ = sweep
    other = read_fold(folder / "2" / FOLD_FILE)
    write_fold(
        folder / "2" / FOLD_FILE, FoldPredictions(**{**other.__dict__, "settings": {**other.settings, "seed": 7}})
    )
    assert "was run with other settings than fold 0" in ends_as_user_error(folder, user_error)


def test_a_fold_twice_is_one_line_and_nothing_written(sweep, user_error):
    folder, _ = sweep
    (folder / "again").mkdir()
    (folder / "again" / FOLD_FILE).write_bytes((folder / "0" / FOLD_FILE).read_bytes())
    assert "fold 0 is there twice" in ends_as_user_error(folder, user_error)


def test_labels_changed_since_the_folds_ran_are_one_line(sweep, user_error):
    folder, _ = sweep
    fold = read_fold(folder / "0" / FOLD_FILE)
    write_fold(folder / "0" / FOLD_FILE, FoldPredictions(**{**fold.__dict__, "labels": (fold.labels + 1) % 10}))
    assert "the prepared data changed since the folds ran" in ends_as_user_error(folder, user_error)


def test_a_folder_without_folds_or_no_folder_is_one_line(tiny, user_error):
    Path("empty").mkdir()
    assert "empty: no out_of_fold.npz found" in ends_as_user_error(Path("empty"), user_error)
    assert "nowhere: no such folder" in ends_as_user_error(Path("nowhere"), user_error)


def test_several_k_fold_sweeps_are_averaged_into_the_folder_given(sweep, capsys):
    folder, parent = sweep
    other = Path("multirun/kfold-seed-2")
    for path in folder.rglob(FOLD_FILE):  # another sweep of the same images, a little less sure of every label
        fold = read_fold(path)
        probs = 0.9 * fold.probs + 0.01
        target = other / path.relative_to(folder)
        write_fold(
            target, FoldPredictions(fold.fold, fold.folds, fold.positions, fold.labels, probs, fold.settings, "")
        )
    assert kfold_join.main([str(folder), str(other), "--out", "both"]) == 0
    rows = list(csv.DictReader(Path("both/mnist_train.csv").read_text().splitlines()))
    assert sorted(int(r["index"]) for r in rows[:3]) == ROWS[FLIPPED].tolist()
    assert "review queue of 100 of 300 labels, 3 of them" in capsys.readouterr().out
    assert not (folder / "label_issues").exists() and not (other / "label_issues").exists()
    assert not mlflow.MlflowClient().list_artifacts(parent, "label_issues")  # several sweeps: no one parent


def test_several_sweeps_without_a_folder_to_write_to_are_one_line(sweep, user_error):
    folder, _ = sweep
    _, err = user_error(lambda: kfold_join.main([str(folder), str(folder)]))
    assert "several K-fold sweeps averaged have no folder of their own: give --out <folder>" in err


def test_folds_written_before_the_review_setting_get_conf_s(sweep):
    folder, _ = sweep
    for path in folder.rglob(FOLD_FILE):
        fold = read_fold(path)
        settings = {k: v for k, v in fold.settings.items() if k != "label_issues.review"}
        write_fold(path, FoldPredictions(fold.fold, fold.folds, fold.positions, fold.labels, fold.probs, settings, ""))
    assert kfold_join.main([str(folder)]) == 0
    assert len(list(csv.DictReader((folder / "label_issues" / "mnist_train.csv").read_text().splitlines()))) == 100
