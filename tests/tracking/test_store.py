"""The embedded MLflow store under parallel writers: sweep jobs and queued DVC experiments write to one SQLite
file at once, the first of them creating it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.repos import REPO

WRITER = """
import sys
import mlflow
from pipeline.tracking.store import connect

connect({"uri": "sqlite:///mlruns/mlflow.db", "experiment": "parallel"})
for r in range(3):
    with mlflow.start_run(run_name=f"writer {sys.argv[1]} run {r}"):
        mlflow.log_params({"writer": sys.argv[1], "run": r})
        for step in range(20):
            mlflow.log_metrics({"loss": 1 / (step + 1), "accuracy": step / 20}, step=step)
"""


@pytest.mark.slow  # real processes
def test_four_writers_on_a_new_store_lose_nothing(tmp_path):
    """Four processes start at once on a store that does not exist yet: every run and metric lands, none fails
    with "database is locked" or on tables another process is creating."""
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(i)],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    errors = [w.communicate(timeout=300)[1] for w in writers]
    assert [w.returncode for w in writers] == [0] * 4, "\n".join(e[-2000:] for e in errors)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("parallel").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(f"writer {i} run {r}" for i in range(4) for r in range(3))
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(len(client.get_metric_history(r.info.run_id, "loss")) == 20 for r in runs)
