"""The K-fold tool in process on the tests' tiny data: two real fold trainings as a sweep's jobs under the sweep
callback's parent run, each predicting only the images it did not train on, and the join of them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf, open_dict

from pipeline import kfold_join
from pipeline.core.errors import UserError
from pipeline.core.files import read_json
from pipeline.kfold import finished_fold, held_out_positions, run_fold
from pipeline.scoring.out_of_fold import FOLD_FILE, FoldPredictions, fold_settings, read_fold, write_fold
from pipeline.sweeps.callback import SWEEP_FILE, SweepTracking
from pipeline.sweeps.jobs import SweepJob, with_job_outputs
from pipeline.tracking.runs import flatten
from tests.helpers.configs import tiny_config
from tests.helpers.repos import REPO

FOLD_JOB = ["model=plain1", "kfold.folds=2", "label_issues.max_shown=2"]


def test_the_folds_held_out_images_are_the_rest_of_the_training_set():
    labels = np.arange(300) % 10
    held = [set(held_out_positions(labels, 3, 0, k)) for k in range(3)]
    assert set().union(*held) == set(range(300)) and sum(map(len, held)) == 300


def test_two_folds_as_a_sweep_then_joined(tiny, tmp_path, capsys):
    sweep_dir = Path("multirun/kfold")
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        sweep_cfg = compose("config", overrides=FOLD_JOB, return_hydra_config=True)
        with open_dict(sweep_cfg):
            sweep_cfg.hydra.overrides.task = [*FOLD_JOB, "kfold.fold=0,1"]
            sweep_cfg.hydra.sweep.dir = str(sweep_dir)
        callback = SweepTracking()
        callback.on_multirun_start(sweep_cfg)
    parent = read_json(sweep_dir / SWEEP_FILE)["parent_run_id"]
    for k in (0, 1):
        cfg = tiny_config([*FOLD_JOB, f"kfold.fold={k}"])
        accuracy = run_fold(cfg, sweep_dir / str(k), SweepJob(f"kfold.fold={k}", parent, f"kfold.fold={k}"))
        assert 0 <= accuracy <= 1
        fold = read_fold(sweep_dir / str(k) / FOLD_FILE)
        assert fold.fold == k and len(fold.positions) == 150 and fold.probs.shape == (150, 10)
    callback.on_multirun_end(sweep_cfg)

    client = MlflowClient()
    assert client.get_run(parent).info.status == "FINISHED"
    children = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(c.info.run_name for c in children) == ["kfold.fold=0", "kfold.fold=1"]
    assert all("kfold.held_out_accuracy" in c.data.metrics for c in children)
    assert sorted(c.data.tags["kfold.fold"] for c in children) == ["0", "1"]
    # Each fold logged its model to its run and registered none: the registry is what one may promote.
    assert client.search_model_versions() == []
    for child in children:
        assert "model.registered" not in child.data.tags
        assert client.search_logged_models([child.info.experiment_id], f"source_run_id = '{child.info.run_id}'")
    # Each fold's model trained on the other fold's 150 images alone (less its validation images).
    n_val = round(150 * cfg.train.validation_split)
    assert capsys.readouterr().out.count(f": {150 - n_val} training, {n_val} validation images") == 2

    assert kfold_join.main([str(sweep_dir)]) == 0
    counts = read_json(sweep_dir / "label_issues" / "label_issues.json")["mnist_train"]
    assert counts["images"] == 300 and 0 <= counts["flagged"] <= 300
    assert (sweep_dir / "label_issues" / "mnist_train.csv").is_file()
    assert "label_issues: mnist_train:" in capsys.readouterr().out


def test_a_fold_done_with_the_same_settings_is_kept_and_with_others_trained_again(tiny):
    """The sweep run again into the same folder after an interruption trains only the folds not done."""
    cfg = tiny_config(["kfold.fold=1"])
    settings = fold_settings(flatten(OmegaConf.to_container(with_job_outputs(cfg, Path("job")), resolve=True)))
    probs = np.eye(10)[[1, 2, 3, 3]]  # 3 of 4 right
    write_fold(
        Path("job") / FOLD_FILE, FoldPredictions(1, 5, np.arange(4), np.array([1, 2, 3, 4]), probs, settings, "")
    )
    assert finished_fold(Path("job") / FOLD_FILE, 1, settings) == 0.75
    assert run_fold(cfg, Path("job"), SweepJob("kfold.fold=1", None, "kfold.fold=1")) == 0.75
    assert not Path("job/models").exists()  # not trained
    assert finished_fold(Path("job") / FOLD_FILE, 1, {**settings, "seed": 7}) is None
    assert finished_fold(Path("job") / FOLD_FILE, 2, settings) is None


def test_a_fold_job_without_its_fold_index_is_a_users_error(tiny):
    with pytest.raises(UserError, match=r"kfold.fold is not set: .*'kfold.fold=range\(0,5\)'"):
        run_fold(tiny_config(), Path("job"), SweepJob("alone", None, "alone"))


def test_a_failed_fold_of_a_sweep_returns_nan(tiny):
    Path("data/prepared/mnist.npz").unlink()
    cfg = tiny_config(["kfold.fold=0"])
    assert math.isnan(run_fold(cfg, Path("job"), SweepJob("kfold.fold=0", "no-such-parent", "kfold.fold=0")))
    assert not (Path("job") / FOLD_FILE).exists()
