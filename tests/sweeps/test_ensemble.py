"""A sweep's runs averaged at its end, on the tests' tiny project and a real MLflow store: the review queue of the
averaged probabilities puts the labels flipped on purpose first where each single run's does not, its files land
in the sweep folder and on the parent run, the comparison shows the ensemble as a row that is never the best; runs
that cannot be averaged are said so in one line and the sweep goes on; `python -m pipeline.ensemble` does the same
for any list of runs."""

from __future__ import annotations

import csv
from pathlib import Path

import mlflow
import numpy as np
import pytest

from pipeline import ensemble as ensemble_tool
from pipeline.core.files import read_json
from pipeline.data.datasets import load_dataset, prepared_path
from pipeline.scoring.comparison_tables import ENSEMBLE_VERDICT
from pipeline.sweeps.ensemble import logged_ensembles, sweep_ensemble
from pipeline.sweeps.results import VARIANT_TAG, write_comparison
from pipeline.tracking.store import connect

FLIPPED = [7, 30, 61]  # positions in the tiny MNIST test set whose labels are wrong, by construction
ODD_ONE_OUT = {42: 11, 43: 52, 44: 88}  # per seed, a right label that run alone doubts most


def seed_probs(labels: np.ndarray, seed: int) -> np.ndarray:
    """What a run of `seed` would give: the given label 0.85-0.99, but 0.1 on the FLIPPED images (0.9 to their true
    class), and at its own ODD_ONE_OUT image, a right label, 0.02: that run's one mistake, doubted more than a
    flipped label."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    given = rng.uniform(0.85, 0.99, n)
    given[FLIPPED] = 0.1
    given[ODD_ONE_OUT[seed]] = 0.02
    other = (labels + 1) % 10  # the FLIPPED images' true class; another for the rest
    probs = np.zeros((n, 10))
    probs[np.arange(n), labels] = given
    probs[np.arange(n), other] = 1 - given
    return probs


def child(client, experiment: str, parent: str, seed: int, probs: np.ndarray, labels: np.ndarray, folder: Path) -> str:
    run = client.create_run(experiment, run_name=f"seed={seed}", tags={"mlflow.parentRunId": parent})
    run_id = run.info.run_id
    path = folder / str(seed) / "mnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, probs=probs, y_true=labels)
    client.log_artifact(run_id, str(path), "predictions")
    for key, value in {"seed": seed, "data.name": "mnist", "paths.prepared": "data/prepared"}.items():
        client.log_param(run_id, key, value)
    client.set_tag(run_id, VARIANT_TAG, "default")
    client.set_tag(run_id, "dataset.test.mnist", "synthetic, 10 classes")
    client.log_metric(run_id, "test.mnist.accuracy", float((probs.argmax(axis=1) == labels).mean()))
    client.log_metric(run_id, "test.mnist.loss", 0.1)
    client.set_terminated(run_id)
    return run_id


@pytest.fixture
def sweep(tiny, tmp_path):
    """A finished seed sweep of three runs on the tiny MNIST test set, whose FLIPPED labels are wrong."""
    cfg = tiny.copy()
    cfg.label_issues.review = 5
    cfg.data.test_sets = ["mnist"]
    connect(cfg.tracking)
    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    parent = client.create_run(experiment, run_name="sweep seed=42,43,44").info.run_id
    labels = load_dataset(prepared_path(cfg.paths.prepared, "mnist")).y_test
    ids = [child(client, experiment, parent, s, seed_probs(labels, s), labels, tmp_path / "p") for s in ODD_ONE_OUT]
    return cfg, client, parent, ids, labels


def queue(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_the_averaged_queue_puts_the_flipped_labels_first_where_no_single_run_does(sweep):
    cfg, client, parent, _, labels = sweep
    folder = Path("multirun/seeds")
    rows = sweep_ensemble(client, parent, cfg, folder)
    ranked = [int(r["index"]) for r in queue(folder / "ensemble" / "mnist.csv")]
    assert len(ranked) == 5 and sorted(ranked[:3]) == FLIPPED  # the rows are the positions here
    for seed, odd in ODD_ONE_OUT.items():  # each run alone ranks its odd one out first
        alone = seed_probs(labels, seed)[np.arange(len(labels)), labels]
        assert np.argsort(alone, kind="stable")[0] == odd
    (e,) = rows
    assert (e.test_set, e.runs, e.accuracy, e.single_loss) == ("mnist", 3, 1 - 3 / len(labels), pytest.approx(0.1))
    counts = read_json(folder / "ensemble" / "label_issues.json")["mnist"]
    assert counts["queue"] == 5 and counts["queue_errors"] == 3 and counts["errors"] == 3
    assert read_json(folder / "ensemble" / "ensemble.json")["mnist"]["runs"] == 3
    logged = {f.path for f in client.list_artifacts(parent, "ensemble")}
    files = ("mnist.csv", "mnist.pdf", "label_issues.json", "ensemble.json")
    assert logged == {f"ensemble/{f}" for f in files}
    metrics = client.get_run(parent).data.metrics
    assert metrics["ensemble.mnist.accuracy"] == e.accuracy and metrics["label_issues.ensemble.mnist.queue_errors"] == 3


def test_the_comparison_shows_the_ensemble_as_a_row_never_the_best(sweep):
    cfg, client, parent, ids, _ = sweep
    folder = Path("multirun/seeds")
    rows = sweep_ensemble(client, parent, cfg, folder)
    settings = {"metric": "accuracy", "test_set": None, "alpha": 0.05}
    comparison = write_comparison(client, parent, settings, ["mnist"], folder, rows)
    assert comparison.best == "default" and comparison.champion in ids
    table = (folder / "comparison.md").read_text()
    assert "| *all 3 runs averaged* | 3 | 97.00% | n/a |" in table and f"| {ENSEMBLE_VERDICT} |" in table
    assert "against 96.00% for the mean single run" in " ".join(table.split())
    csv_rows = list(csv.DictReader((folder / "comparison.csv").open()))
    assert [r["verdict"] for r in csv_rows] == ["best", ENSEMBLE_VERDICT]
    assert not any("averaged" in k for k in client.get_run(parent).data.metrics)  # its own: ensemble.mnist.*
    assert logged_ensembles(client, parent) == rows  # what `python -m pipeline.compare` shows again


def test_runs_that_cannot_be_averaged_are_one_line_and_the_sweep_goes_on(sweep, tmp_path, capsys):
    cfg, client, parent, _, labels = sweep
    experiment = client.get_run(parent).info.experiment_id
    child(client, experiment, parent, 42, seed_probs(labels, 42)[:50], labels[:50], tmp_path / "limited")
    assert sweep_ensemble(client, parent, cfg, Path("multirun/seeds")) == ()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep: no ensemble: mnist: run seed=42 evaluated 50 images, run seed=42 100" in err
    assert not Path("multirun/seeds/ensemble").exists()


def test_the_tool_averages_any_list_of_runs(sweep, capsys):
    _, client, parent, ids, _ = sweep
    assert ensemble_tool.main([*ids[:2], "--out", "two", "--review", "4"]) == 0
    assert len(queue(Path("two/mnist.csv"))) == 4
    assert "ensemble: mnist: runs averaged 2" in capsys.readouterr().out
    assert not client.list_artifacts(parent, "ensemble")  # runs, not a sweep: logged nowhere
    assert ensemble_tool.main([parent, "--out", "again", "--review", "4"]) == 0  # a sweep's parent: logged to it
    assert {f.path for f in client.list_artifacts(parent, "ensemble")} >= {"ensemble/mnist.csv"}


def test_the_tool_refuses_a_run_that_did_not_finish_in_one_line(sweep, user_error):
    _, client, _, ids, _ = sweep
    client.set_terminated(ids[1], "FAILED")
    _, err = user_error(lambda: ensemble_tool.main(ids))
    assert err == "error: run seed=43 is FAILED: only finished runs are averaged\n"
    assert not Path("ensemble").exists()
