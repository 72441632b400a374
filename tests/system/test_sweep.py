"""Sweeps three ways: Hydra multirun (sequential and joblib-parallel) and a queued DVC experiment grid, each
landing in MLflow. How the callback names the variants: tests/sweeps/test_callback.py."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.repos import copy_repo, run, stage_env

GRID = ["model=plain1,plain3", "augment=none,standard"]
# Each variant trained on a fifth of the fast setting's images, with a report of few pictures: what is checked is
# where the runs and files land, not what they show (the whole report: tests/test_report.py, test_e2e.py).
SMALL = ["experiment=fast", "data.train_limit=2000", "report.max_misclassified=12", "report.grid_size=8"]
SMALL += ["report.confused_pairs=1", "label_issues.max_shown=12"]


@pytest.fixture(scope="module")
def prepared(mirror, tmp_path_factory):
    """A new repository whose data stages have run, committed so DVC experiments can start from it."""
    path = copy_repo(tmp_path_factory.mktemp("sweep"))
    env = stage_env(mirror)
    run(["git", "init", "-q"], path, env)
    run(["dvc", "repro", "fetch", "ingest"], path, env)
    run(["git", "add", "-A"], path, env)
    run(["git", "commit", "-q", "-m", "clone"], path, env)
    return path, env


def sweep_runs(path: Path, experiment: str = "handwriting-lab", store: str = "mlflow.db"):
    client = MlflowClient(tracking_uri=f"sqlite:///{path}/mlruns/{store}")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id])


# The sequential launcher sweeps the 2×2 grid on both test sets: names, params, the comparison of four variants on
# each. The parallel one (two jobs at once, in the joblib launcher's processes) runs one row of it on one test set:
# what differs there is where its jobs run and write, not what the comparison holds.
LAUNCHERS = {
    "basic": (GRID, ["mnist", "emnist_digits"]),
    "parallel": (["model=plain1,plain3"], ["mnist"]),
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_multirun_makes_one_parent_named_children_and_a_comparison(prepared, launcher):
    path, env = prepared
    grid, test_sets = LAUNCHERS[launcher]
    axes = [[f"{key}={value}" for value in values.split(",")] for key, values in (s.split("=") for s in grid)]
    names = {",".join(variant) for variant in itertools.product(*axes)}
    experiment = f"sweep-{launcher}"
    run(
        [
            "python",
            "-m",
            "pipeline.experiment",
            "-m",
            f"hydra/launcher={launcher}",
            *SMALL,
            "evaluate.limit=500",
            f"data.test_sets=[{','.join(test_sets)}]",
            f"tracking.experiment={experiment}",
            *grid,
        ],
        path,
        env,
    )
    # Every job wrote inside its own folder: nothing the repository tracks (dvc.lock, metrics/, plots/) changed.
    assert run(["git", "status", "--porcelain"], path, env).stdout == ""
    client, runs = sweep_runs(path, experiment)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(names)
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.info.run_name for c in children} == names
    for c in children:
        for part in c.info.run_name.split(","):
            key, value = part.split("=")
            assert c.data.params[f"{key}.name"] == value
        assert c.info.status == "FINISHED"
        assert {*(f"test.{t}.accuracy" for t in test_sets), "train.epochs_run"} <= set(c.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert artifacts == {f"comparison/{f}" for f in ("comparison.md", "comparison.csv", "runs.csv", "comparison.png")}
    table = Path(client.download_artifacts(parent.info.run_id, "comparison/runs.csv")).read_text()
    assert len(table.strip().splitlines()) == len(names) + 1
    assert ("generalisation_gap" in table.splitlines()[0]) == (len(test_sets) > 1)  # between the first and the others
    # Each variant on each test set, against the best, paired on the predictions each child logged.
    variants = Path(client.download_artifacts(parent.info.run_id, "comparison/comparison.csv")).read_text()
    rows = list(csv.DictReader(io.StringIO(variants)))
    # The runs averaged, one row per test set (#32): an ensemble, never the best.
    ensembles = [r for r in rows if r["verdict"] == "ensemble (not one model)"]
    assert sorted(r["test_set"] for r in ensembles) == sorted(test_sets)
    rows = [r for r in rows if r not in ensembles]
    assert [r["test_set"] for r in rows] == [t for t in test_sets for _ in names]
    assert sum(r["verdict"] == "best" for r in rows) == len(test_sets) and all(r["seeds"] == "1" for r in rows)
    assert all(r["p_vs_best"] for r in rows if r["verdict"] != "best")
    assert parent.data.tags["compare.best"] == rows[0]["variant"]


def test_queued_dvc_experiment_grid_lands_in_dvc_and_mlflow(prepared):
    """Two workers at once, on a store that does not exist yet: both experiments land in DVC and in MLflow. Up to
    evaluate, whose metrics `dvc exp show` has: the stages after it add nothing to what is checked."""
    path, env = prepared
    run(
        [
            "dvc",
            "exp",
            "run",
            "--queue",
            "evaluate",
            *(arg for setting in SMALL for arg in ("-S", setting)),
            "-S",
            "evaluate.limit=500",
            "-S",
            "tracking.uri=sqlite:///mlruns/queued.db",
            "-S",
            "model=plain1,plain3",
        ],
        path,
        env,
    )
    assert not (path / "mlruns" / "queued.db").exists()
    run(["dvc", "queue", "start", "-j", "2"], path, env)
    deadline = time.monotonic() + 600
    while "Running" in (status := run(["dvc", "queue", "status"], path, env).stdout) or "Queued" in status:
        assert time.monotonic() < deadline, status
        time.sleep(5)  # each look is a DVC process of its own, about a second of CPU the experiments need
    assert "Failed" not in status, status
    shown = json.loads(run(["dvc", "exp", "show", "--json"], path, env).stdout)
    exps = [rev for branch in shown for e in (branch.get("experiments") or []) for rev in e["revs"]]
    assert len(exps) == 2
    models = set()
    for rev in exps:
        data = rev["data"]
        models.add(data["params"]["params.yaml"]["data"]["model"]["name"])
        assert 0 < data["metrics"]["metrics/test.json"]["data"]["mnist"]["accuracy"] <= 1
    assert models == {"plain1", "plain3"}
    _, runs = sweep_runs(path, store="queued.db")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    tagged = {r.data.tags.get("dvc.experiment") for r in runs} - {None}
    assert tagged == {rev["name"] for rev in exps}
    assert all(r.data.tags.get("git.commit") for r in runs if r.data.tags.get("dvc.experiment"))


def test_a_failing_variant_is_listed_and_the_sweep_still_compares_the_rest(prepared):
    """data.test_sets=[emnist_balanced] is in range, but its 47 classes are not the MNIST model's 10: that variant
    fails in evaluate, its child run is FAILED, the parent still gets its comparison, and the sweep exits non-zero.
    (A variant out of range is refused before the sweep starts: tests/test_experiment.py.)"""
    path, env = prepared
    experiment = "sweep-failing"
    result = run(
        [
            "python",
            "-m",
            "pipeline.experiment",
            "-m",
            *SMALL,
            "evaluate.limit=200",
            f"tracking.experiment={experiment}",
            "model=plain1",
            "data.test_sets=[mnist],[emnist_balanced]",
        ],
        path,
        env,
        check=False,
    )
    assert result.returncode != 0
    assert "1 of 2 runs did not finish: data.test_sets=[emnist_balanced] (FAILED)" in result.stderr + result.stdout
    client, runs = sweep_runs(path, experiment)
    by_name = {r.info.run_name: r for r in runs}
    assert by_name["data.test_sets=[mnist]"].info.status == "FINISHED"
    assert by_name["data.test_sets=[emnist_balanced]"].info.status == "FAILED"
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FAILED"
    table = Path(client.download_artifacts(parent.info.run_id, "comparison/runs.csv")).read_text()
    assert "data.test_sets=[mnist],FINISHED" in table and "data.test_sets=[emnist_balanced],FAILED" in table
    variants = Path(client.download_artifacts(parent.info.run_id, "comparison/comparison.md")).read_text()
    assert "| data.test_sets=[emnist_balanced] | 0 (1 failed) | – |" in variants
