"""The embedded MLflow store under parallel writers: sweep jobs and queued DVC experiments write to one SQLite
file at once, the first of them creating it; and which URIs the tools that only read (predict, promote) take as a
store's."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking.store import not_a_store, quiet_mlflow
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


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite:///mlruns/mlflow.db",
        "sqlite:////srv/mlflow/mlflow.db",
        "http://127.0.0.1:5000",
        "https://mlflow.lab.example",
        "postgresql://mlflow@db.lab/mlflow",
        "postgresql+psycopg://mlflow@db.lab/mlflow",
    ],
)
def test_the_stores_the_tools_read_are_taken(uri):
    assert not_a_store(uri) is None


@pytest.mark.parametrize(
    ("uri", "what"),
    [
        ("mlruns", "a path, not a tracking store's URI"),
        ("/srv/mlruns", "a path, not a tracking store's URI"),
        ("file:///srv/mlruns", "file://, not a tracking store's scheme"),
        ("s3://b/m", "s3://, not a tracking store's scheme"),
    ],
)
def test_a_path_or_another_scheme_is_not_a_store(uri, what):
    fix = "a SQLite store is sqlite:///<its .db file>, a server http(s)://<host>:<port>"
    assert not_a_store(uri) == f"{what} — {fix}"


@pytest.mark.parametrize(
    ("environ", "level", "urls"),
    [
        ({}, logging.WARNING, "true"),
        ({"MLFLOW_LOGGING_LEVEL": "info"}, logging.INFO, None),
        ({"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "false"}, logging.WARNING, "false"),  # MLflow's own, as given
    ],
)
def test_mlflows_info_lines_are_off_unless_mlflow_logging_level_asks_for_them(environ, level, urls):
    mlflows = logging.getLogger("mlflow")
    before = mlflows.level
    try:
        quiet_mlflow(environ)
        assert mlflows.level == level
        assert logging.getLogger("mlflow.system_metrics.system_metrics_monitor").getEffectiveLevel() == level
        assert environ.get("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT") == urls  # its run's URL as a run ends
    finally:
        mlflows.setLevel(before)
