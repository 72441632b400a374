"""A search killed with SIGTERM during a trial, and the same command resuming it to its budget: the real tool in a
tiny project, the study in its real SQLite storage, the runs in the real MLflow store."""

from __future__ import annotations

import signal

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.projects import project, start, wait_for_epochs

pytestmark = pytest.mark.slow  # real processes, several trainings

SETTINGS = [
    "experiment=fast",
    "data.train_limit=null",
    "train.epochs=2",
    "train.batch_size=32",
    "tune.trials=2",
    "tune.pruner=none",  # which trials finish must not depend on their losses here
    "search.params.train.batch_size='choice(32)'",
    "hydra.run.dir=.",
    "hydra.output_subdir=null",
    "hydra/job_logging=stdout",
]


def test_sigterm_fails_the_trial_and_the_same_command_resumes_to_the_budget(tmp_path, empty_store):
    folder = project(tmp_path, empty_store)
    search = start(folder, "pipeline.tune", *SETTINGS)
    # Trial 0 done, trial 1 one epoch in: the signal lands in trial 1's second epoch.
    wait_for_epochs(folder / "tune" / "default-mnist" / "1" / "checkpoints" / "epochs.json", 1, search)
    search.send_signal(signal.SIGTERM)
    _, err = search.communicate(timeout=120)

    assert search.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "tune: interrupted by SIGTERM" in err and "Traceback" not in err, err[-3000:]
    assert "Run the same command again: the search goes on to its budget" in err  # not "resumes after its epoch"
    storage = f"sqlite:///{folder}/mlruns/optuna.db"
    states = [t.state.name for t in optuna.load_study(study_name="default-mnist", storage=storage).trials]
    assert states == ["COMPLETE", "FAIL"]
    client = MlflowClient(f"sqlite:///{folder}/mlruns/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (parent,) = client.search_runs(experiments, "attributes.run_name = 'tune default-mnist'")
    assert parent.info.status == "KILLED"
    killed = client.search_runs(experiments, "tags.`tune.trial` = '1'")[0]
    assert killed.info.status == "KILLED" and killed.data.tags["run.ended_by"] == "train: interrupted by SIGTERM"

    resumed = start(folder, "pipeline.tune", *SETTINGS)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "2 trials completed, 0 pruned, 1 failed" in out
    study = optuna.load_study(study_name="default-mnist", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE"]  # trial 0 not trained again
    children = client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted((r.data.tags["tune.trial"], r.info.status) for r in children) == [
        ("0", "FINISHED"),
        ("1", "KILLED"),
        ("2", "FINISHED"),
    ]
    after = client.get_run(parent.info.run_id)  # the same parent, finished now
    assert after.info.status == "FINISHED" and after.data.tags["tune.best_trial"] in ("0", "2")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert artifacts == {"optuna/history.png", "optuna/importances.png", "optuna/parallel_coordinates.png"}
