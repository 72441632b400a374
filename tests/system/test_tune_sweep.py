"""A search as a Hydra multirun, as a user types it: two variants, each tuned by two parallel workers sharing its
study (the joblib launcher's processes), then the tuned variants compared over seeds — the real tool in a tiny
project, the studies in their real SQLite storage, every run in the real MLflow store."""

from __future__ import annotations

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.projects import project, start

pytestmark = pytest.mark.slow  # real processes, eight tiny trainings

SETTINGS = [
    "experiment=fast",
    "data.train_limit=1000",
    "data.test_sets=[mnist]",
    "train.epochs=1",
    "train.batch_size=32",
    # The comparison's runs are whole experiments: a report of few pictures (the whole report: tests/test_report.py).
    "report.max_misclassified=12",
    "report.grid_size=8",
    "report.confused_pairs=1",
    "label_issues.max_shown=12",
    "tune.trials=2",
    "tune.pruner=none",
    "search.params.train.batch_size='choice(32)'",
    "~search.params.model",  # the plain networks have no dropout: the learning rate is searched
    "hydra/job_logging=stdout",
]
STUDIES = {"plain1": "default-mnist-model_plain1", "plain3": "default-mnist-model_plain3"}


def test_parallel_workers_share_each_variants_study_and_the_tuned_variants_are_compared(tmp_path, empty_store):
    folder = project(tmp_path, empty_store)
    search = start(
        folder,
        "pipeline.tune",
        "-m",
        "hydra/launcher=parallel",
        "model=plain1,plain3",
        "tune.worker=0,1",
        "tune.compare_seeds=[7]",  # one seed: the command over several, tests/sweeps/test_tune_sweep.py
        *SETTINGS,
    )
    out, err = search.communicate(timeout=900)
    assert search.returncode == 0, (out + err)[-4000:]

    storage = f"sqlite:///{folder}/mlruns/optuna.db"
    assert set(optuna.get_all_study_names(storage)) == set(STUDIES.values())
    client = MlflowClient(f"sqlite:///{folder}/mlruns/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    best = {}
    for model, name in STUDIES.items():
        study = optuna.load_study(study_name=name, storage=storage)
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        # Each worker asks for a trial while fewer than the budget are done: at most one more per extra worker.
        assert 2 <= len(done) <= 3 and len(done) == len(study.trials)
        assert len({t.params["train.learning_rate"] for t in done}) == len(done)  # the workers drew values of their own
        (parent,) = client.search_runs(experiments, f"attributes.run_name = 'tune {name}'")
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["tune.best_trial"] == str(study.best_trial.number)
        children = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert sorted(r.data.tags["tune.trial"] for r in children) == sorted(str(t.number) for t in done)
        assert {r.data.params["model.name"] for r in children} == {model}
        best[model] = study.best_trial.params["train.learning_rate"]

    (comparison,) = client.search_runs(experiments, "attributes.run_name LIKE 'sweep tune.best_of=%'")
    assert comparison.info.status == "FINISHED"
    runs = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{comparison.info.run_id}'")
    trained = sorted(
        (
            r.data.tags["sweep.variant"],
            r.data.params["model.name"],
            float(r.data.params["train.learning_rate"]),
            r.data.params["seed"],
        )
        for r in runs
    )
    assert trained == [  # each study's network with its best learning rate, over the seeds asked for
        (f"tune.best_of={STUDIES[model]}", model, pytest.approx(best[model]), seed)
        for model in ("plain1", "plain3")
        for seed in ("7",)
    ]
    assert "| tune.best_of=default-mnist-model_plain1 | 1 |" in out
