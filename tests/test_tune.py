"""The tuning tool: a bad search space stops it in one line before any training; a search through the real
`train` on tiny synthetic data, its trials under one parent run, one of them pruned and shown so."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from pipeline import tune
from pipeline.sweeps import study as studies
from tests.helpers.configs import tiny_config


def space(lr: str, batch: str = "choice(32)", dropout: str = "choice(0.3)") -> list[str]:
    """Overrides setting the default search's three settings (each a string in Hydra's sweep grammar)."""
    return [
        f"search.params.train.learning_rate='{lr}'",
        f"search.params.train.batch_size='{batch}'",
        f"search.params.model.dropout='{dropout}'",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+search.params.train.epoks='range(1, 3)'"],
            "search.params.train.epoks: no such setting in the composed config — did you mean train.epochs?",
        ),
        (space("interval(0.01, 0.001)"), "search.params.train.learning_rate=interval(0.01, 0.001): an empty range"),
        (space("tag(log, interval(0, 0.01))"), "a log scale needs bounds above 0"),
    ],
)
def test_a_bad_search_space_exits_1_in_one_line_before_any_work(overrides, message, tmp_path, monkeypatch, user_error):
    monkeypatch.chdir(tmp_path)
    _, err = user_error(lambda: tune.main(tiny_config(overrides)))
    assert err.count("\n") == 1 and message in err, err
    assert os.listdir(tmp_path) == []  # no store, no study, no trial folder


@pytest.mark.slow  # three tiny trainings
def test_a_search_trains_its_trials_under_one_parent_and_prunes_a_bad_one(tiny, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    settings = ["train.epochs=2", "tune.trials=3", "tune.startup_trials=1", "tune.prune_after=1"]
    cfg = tiny_config([*settings, *space("choice(0.003, 10.0)")])
    config = OmegaConf.to_container(cfg, resolve=True)
    # The first two trials' values, known in advance: a good rate, then one that diverges at its first epoch.
    optuna.create_study(
        storage=studies.storage_url(cfg.tune, cfg.tracking), study_name=studies.study_name(config)
    ).enqueue_trial({"train.learning_rate": 0.003, "train.batch_size": 32, "model.dropout": 0.3})
    optuna.load_study(
        storage=studies.storage_url(cfg.tune, cfg.tracking), study_name=studies.study_name(config)
    ).enqueue_trial({"train.learning_rate": 10.0, "train.batch_size": 32, "model.dropout": 0.3})

    study = tune.tune(cfg)

    states = [t.state.name for t in study.trials]
    assert states[:2] == ["COMPLETE", "PRUNED"] and len(states) == 3, states
    assert Path("mlruns/optuna.db").is_file()  # beside the MLflow store
    client = MlflowClient("sqlite:///mlruns/mlflow.db")
    runs = {r.info.run_name: r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}
    parent = runs.pop("tune default-mnist")
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs.values()} == {parent.info.run_id}
    first = runs["trial 0: train.learning_rate=0.003,train.batch_size=32,model.dropout=0.3"]
    pruned = runs["trial 1: train.learning_rate=10.0,train.batch_size=32,model.dropout=0.3 (pruned after epoch 1)"]
    assert first.data.tags["tune.state"] == "COMPLETE" and first.data.metrics["train.epochs_run"] == 2
    assert pruned.data.tags["tune.state"] == "PRUNED" and pruned.data.metrics["train.epochs_run"] == 1
    assert pruned.data.tags["tune.overrides"] == "train.learning_rate=10.0 train.batch_size=32 model.dropout=0.3"
    best = study.best_trial
    assert parent.data.tags["tune.best_trial"] == str(best.number)
    assert parent.data.tags["tune.best.train.learning_rate"] == str(best.params["train.learning_rate"])
    assert parent.data.metrics["tune.best_value"] == pytest.approx(best.value)
    assert parent.data.metrics["tune.trials_pruned"] >= 1
    figures = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert {"optuna/history.png", "optuna/parallel_coordinates.png"} <= figures
    # Each trial logged its model to its run and registered none: the registry is what one may promote.
    assert client.search_model_versions() == []
    for trial in runs.values():
        assert "model.registered" not in trial.data.tags
        assert client.search_logged_models([parent.info.experiment_id], f"source_run_id = '{trial.info.run_id}'")


def test_a_study_searched_with_other_settings_is_refused_by_name(tmp_path, monkeypatch, user_error):
    monkeypatch.chdir(tmp_path)
    first = tiny_config(["tune.trials=1"])
    config = OmegaConf.to_container(first, resolve=True)
    studies.open_study(config, ["train.learning_rate"], studies.storage_url(first.tune, first.tracking), "lr")
    # The budget and the searched setting may change between commands; the training may not.
    again = OmegaConf.to_container(tiny_config(["tune.trials=9", "train.learning_rate=0.01"]), resolve=True)
    studies.open_study(again, ["train.learning_rate"], studies.storage_url(first.tune, first.tracking), "lr")
    other = OmegaConf.to_container(tiny_config(["train.epochs=5"]), resolve=True)
    with pytest.raises(studies.UserError, match=r"study lr in .* searched with other settings \(train.epochs\)"):
        studies.open_study(other, ["train.learning_rate"], studies.storage_url(first.tune, first.tracking), "lr")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("median", optuna.pruners.MedianPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("none", optuna.pruners.NopPruner),
    ],
)
def test_each_pruner_setting_gives_its_pruner(name, kind):
    assert isinstance(studies.pruner({"pruner": name, "startup_trials": 2, "prune_after": 4}, epochs=8), kind)


def test_no_trial_is_pruned_before_epoch_prune_after():
    study = optuna.create_study(pruner=studies.pruner({"pruner": "median", "startup_trials": 1, "prune_after": 3}, 8))
    good = study.ask()
    for epoch, loss in enumerate([0.5, 0.3, 0.2, 0.1], start=1):
        good.report(loss, epoch)
    study.tell(good, 0.1)
    poor = study.ask()
    verdicts = []
    for epoch, loss in enumerate([0.9, 0.8, 0.7], start=1):  # worse than the first at every epoch
        poor.report(loss, epoch)
        verdicts.append(poor.should_prune())
    assert verdicts == [False, False, True]


@pytest.mark.slow  # one tiny training
def test_a_time_budget_starts_no_trial_once_spent(tiny, capsys):
    cfg = tiny_config(["train.epochs=1", "tune.trials=null", "tune.minutes=0.0001", *space("choice(0.003)")])
    study = tune.tune(cfg)
    assert [t.state.name for t in study.trials] == ["COMPLETE"]  # started at once; none after the 6 ms
    assert "tune: 0.0001 minutes spent; the same command goes on with the search" in capsys.readouterr().out
