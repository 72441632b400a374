"""Interrupting real processes: SIGTERM during a training and the run that resumes it, SIGINT during a sweep.

Each test starts the real entrypoint in a tiny project folder (synthetic data large enough that an epoch takes a
few seconds), waits for the progress it needs to see, sends the signal, and reads the MLflow store."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.modeling.fitting import learning_rate
from tests.helpers.configs import tiny_config
from tests.helpers.projects import N_TRAIN, project, start, wait_for_epochs

pytestmark = pytest.mark.slow  # real processes, trained for several epochs

SETTINGS = [
    "experiment=fast",
    "data.train_limit=null",
    "data.test_sets=[mnist]",
    "train.epochs=3",
    "train.batch_size=32",
    "hydra.run.dir=.",
    "hydra.output_subdir=null",
    "hydra/job_logging=stdout",
]


def store(folder: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{folder}/mlruns/mlflow.db")


def all_runs(client: MlflowClient):
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_sigterm_ends_the_run_killed_and_the_next_run_resumes_it(tmp_path, empty_store):
    folder = project(tmp_path, empty_store)
    training = start(folder, "pipeline.train", *SETTINGS)
    wait_for_epochs(folder / "checkpoints" / "epochs.json", 1, training)
    training.send_signal(signal.SIGTERM)
    out, err = training.communicate(timeout=120)

    assert training.returncode == 128 + signal.SIGTERM
    assert "train: interrupted by SIGTERM" in err and "Traceback" not in err, err[-3000:]
    (run,) = all_runs(store(folder))
    assert run.info.status == "KILLED" and run.data.tags["run.ended_by"] == "train: interrupted by SIGTERM"
    assert not (folder / "models").exists() or not any((folder / "models").iterdir())  # nothing half-written
    assert len(json.loads((folder / "checkpoints" / "epochs.json").read_text())) == 1
    first_seconds = json.loads((folder / "checkpoints" / "seconds.json").read_text())["seconds"]

    resumed = start(folder, "pipeline.train", *SETTINGS)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert f"resuming MLflow run {run.info.run_id} after epoch 1" in out
    assert "Epoch 1/3" not in out and "Epoch 2/3" in out and "Epoch 3/3" in out
    assert "\r" not in out and "━" not in out  # piped, not a terminal: a line per epoch, no progress bar
    (after,) = all_runs(store(folder))  # the same run, not a second one
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    assert after.data.tags["train.resumed_after_epoch"] == "1"
    # Finished, it no longer reads as interrupted; that it was is counted, and its time is both processes'.
    assert "run.ended_by" not in after.data.tags and after.data.tags["run.interruptions"] == "1"
    assert after.data.metrics["train.train_seconds"] >= first_seconds > 0
    contexts = sorted({t.key: t.value for t in i.tags}["mlflow.data.context"] for i in after.inputs.dataset_inputs)
    assert contexts == ["training", "validation"]  # logged again by the resumed training, recorded once
    assert after.data.tags["model.registered"] == "handwriting-mnist/1"
    client = store(folder)
    for metric in ("loss", "val_loss", "learning_rate"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1, 2, 3], metric
    # The learning-rate schedule went on where it was: each epoch ends at the rate of its step count.
    steps_per_epoch = -(-int(N_TRAIN * 0.9) // 32)
    schedule = learning_rate(tiny_config(["train.epochs=3"]).train, steps_per_epoch)
    logged = [m.value for m in client.get_metric_history(run.info.run_id, "learning_rate")]
    expected = [float(schedule(epoch * steps_per_epoch)) for epoch in (1, 2, 3)]
    assert logged == pytest.approx(expected, rel=1e-5)
    history = json.loads((folder / "models" / "history.json").read_text())
    assert history["epochs_run"] == 3 and len(history["history"]["loss"]) == 3
    assert not (folder / "checkpoints").exists()  # cleared once the training completed


def test_sigint_stops_a_sweep_and_ends_its_parent_and_child_killed(tmp_path, empty_store):
    folder = project(tmp_path, empty_store)
    sweep = start(
        folder,
        "pipeline.experiment",
        "-m",
        *[s for s in SETTINGS if not s.startswith("hydra.run")],
        "hydra.sweep.dir=sweep",
        "model=plain1,plain3",
    )
    wait_for_epochs(folder / "sweep" / "0" / "checkpoints" / "epochs.json", 1, sweep)
    sweep.send_signal(signal.SIGINT)
    _, err = sweep.communicate(timeout=120)

    assert sweep.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "interrupted by SIGINT" in err and "Traceback" not in err, err[-3000:]
    runs = {r.info.run_name: r for r in all_runs(store(folder))}
    parent = next(r for name, r in runs.items() if name.startswith("sweep "))
    child = runs["model=plain1"]
    assert "model=plain3" not in runs  # the second job never started
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert (parent.info.status, child.info.status) == ("KILLED", "KILLED")
    assert parent.data.tags["run.ended_by"] == "sweep: interrupted by SIGINT"
    assert child.data.tags["run.ended_by"] == "train: interrupted by SIGINT"
