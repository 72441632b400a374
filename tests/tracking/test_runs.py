"""A run's datasets: the digest by which MLflow knows the images and labels the run used, and logging them from
two jobs at once; a run taken up again after it stopped unfinished."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.core.paths import project_root
from pipeline.tracking.runs import (
    END_TAG,
    INTERRUPTIONS_TAG,
    content_digest,
    provenance_tags,
    reopened,
    taken_up_again,
)
from tests.helpers.synthetic import synthetic_dataset


def test_content_digest_tells_apart_any_change_to_images_labels_or_shape():
    ds = synthetic_dataset(10, 200, 0, seed=1)
    x, y = ds.x_train, ds.y_train
    digest = content_digest(x, y)
    assert len(digest) == 12 and digest == content_digest(x.copy(), y.copy())
    last_pixel = x.copy()
    last_pixel[-1, -1, -1] ^= 1  # beyond the first 10,000 values, which are all that MLflow's own digest reads
    assert content_digest(last_pixel, y) != digest
    relabelled = y.copy()
    relabelled[-1] = (relabelled[-1] + 1) % 10
    assert content_digest(x, relabelled) != digest
    assert content_digest(x.reshape(200, 784), y) != digest
    assert content_digest(x[:100], y[:100]) != digest
    assert content_digest(x[::2], y[::2]) == content_digest(np.ascontiguousarray(x[::2]), y[::2])


# Two processes, as two jobs of a parallel sweep: each opens a run in the same experiment and, at one agreed
# moment (when both are ready), logs the same datasets to it.
RACING_JOB = """
import os, sys, time
from pathlib import Path
import mlflow
from pipeline.tracking.runs import log_dataset
from tests.helpers.synthetic import synthetic_dataset

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("race")
ds = synthetic_dataset(10, 400, 0, seed=1)
parts = [(ds.x_train[i : i + 20], ds.y_train[i : i + 20]) for i in range(0, 400, 20)]
ready = Path(sys.argv[2])
with mlflow.start_run():
    (ready / str(os.getpid())).touch()
    while len(list(ready.iterdir())) < 2:
        time.sleep(0.001)
    for i, (x, y) in enumerate(parts):
        log_dataset(f"part{i}", Path("data/prepared/synthetic.npz"), x, y, "training")
"""


@pytest.mark.slow
def test_two_jobs_logging_the_same_datasets_at_once_both_link_them(tmp_path):
    """Without the second attempt, one of the two fails on the datasets table's unique key on the first part."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("race")  # once, before the race, as a sweep's parent does
    ready = tmp_path / "ready"
    ready.mkdir()
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", RACING_JOB, uri, str(ready)], cwd=project_root(), stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [job.communicate(timeout=120)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], "\n".join(errors)[-2000:]
    runs = client.search_runs([experiment_id])
    assert len(runs) == 2
    for finished in runs:
        assert sorted(d.dataset.name for d in finished.inputs.dataset_inputs) == sorted(f"part{i}" for i in range(20))


def test_a_run_is_the_logged_in_members_and_says_what_dvc_ran():
    """The parent of a sweep and its children get these tags alike (pipeline/sweeps/callback.py, runs.training_run)."""
    env = {"MLFLOW_TRACKING_USERNAME": "ada", "DVC_EXP_NAME": "exp-1", "DVC_EXP_BASELINE_REV": "abc123"}
    assert provenance_tags(env) == {
        "mlflow.user": "ada",
        "dvc.experiment": "exp-1",
        "mlflow.source.git.commit": "abc123",
        "git.commit": "abc123",
    }
    assert "mlflow.user" not in provenance_tags({"DVC_EXP_BASELINE_REV": "abc123"})  # MLflow's own: the OS's user


def test_a_run_taken_up_again_counts_its_interruptions_and_forgets_how_the_last_one_ended():
    killed = {END_TAG: "train: interrupted by SIGTERM"}
    assert taken_up_again("KILLED", killed) == ({INTERRUPTIONS_TAG: "1"}, [END_TAG])
    assert taken_up_again("FAILED", {**killed, INTERRUPTIONS_TAG: "2"}) == ({INTERRUPTIONS_TAG: "3"}, [END_TAG])
    assert taken_up_again("RUNNING", {}) == ({INTERRUPTIONS_TAG: "1"}, [])  # its process killed outright (SIGKILL)
    assert taken_up_again("FINISHED", {"other": "x"}) == ({}, [])  # evaluate reopening a completed training


def test_a_killed_run_reopened_and_finished_no_longer_reads_as_interrupted(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            mlflow.set_tag(END_TAG, "train: interrupted by SIGTERM")
            mlflow.end_run("KILLED")
        with reopened(run.info.run_id):
            pass
        after = MlflowClient().get_run(run.info.run_id)
    finally:
        mlflow.set_tracking_uri(None)
    assert after.info.status == "FINISHED"
    assert after.data.tags[INTERRUPTIONS_TAG] == "1" and END_TAG not in after.data.tags
