"""A sweep's comparison written where a sweep ends: files, the parent run's artifacts and tags — here the case
where the seeds disagree, read back from a real MLflow store."""

from __future__ import annotations

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.scoring.comparison import SEEDS_DISAGREE
from pipeline.sweeps.results import VARIANT_TAG, write_comparison

IMAGES = 200
SETTINGS = {"metric": "accuracy", "test_set": None, "alpha": 0.05}


def child(client: MlflowClient, experiment: str, parent: str, variant: str, seed: int, wrong: range, tmp_path) -> None:
    """A finished child run of the sweep, with the predictions evaluate logs: right on every image but `wrong`."""
    run = client.create_run(experiment, run_name=f"{variant},seed={seed}", tags={"mlflow.parentRunId": parent})
    y_true = np.arange(IMAGES) % 10
    predicted = y_true.copy()
    predicted[list(wrong)] = (y_true[list(wrong)] + 1) % 10
    path = tmp_path / f"{variant}-{seed}" / "mnist.npz"
    path.parent.mkdir()
    np.savez(path, probs=np.eye(10)[predicted], y_true=y_true)
    client.log_artifact(run.info.run_id, str(path), "predictions")
    client.log_param(run.info.run_id, "seed", seed)
    client.set_tag(run.info.run_id, VARIANT_TAG, variant)
    client.log_metric(run.info.run_id, "test.mnist.accuracy", 1 - len(wrong) / IMAGES)
    client.set_terminated(run.info.run_id)


def test_seeds_that_disagree_are_named_in_the_table_and_on_the_parent_run(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    child(client, experiment, parent, "model=a", 1, range(20, 32), tmp_path)  # seed 1: b right where a is wrong
    child(client, experiment, parent, "model=a", 2, range(0), tmp_path)
    child(client, experiment, parent, "model=b", 1, range(0), tmp_path)
    child(client, experiment, parent, "model=b", 2, range(20, 33), tmp_path)  # seed 2: the other way round
    folder = tmp_path / "sweep"
    folder.mkdir()

    comparison = write_comparison(client, parent, SETTINGS, ["mnist"], folder)

    assert comparison.best == "model=a" and comparison.of("mnist")[1].verdict == SEEDS_DISAGREE
    assert "| model=b | 2 |" in (folder / "comparison.md").read_text()
    assert f"| {SEEDS_DISAGREE} |" in (folder / "comparison.md").read_text()
    tags = client.get_run(parent).data.tags
    assert tags["compare.best"] == "model=a" and tags["compare.seeds_disagree"] == "model=b"
    assert (folder / "comparison.png").stat().st_size > 0


def test_a_parent_run_has_no_disagreement_tag_when_the_seeds_agree(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    for seed in (1, 2):
        child(client, experiment, parent, "model=a", seed, range(0), tmp_path)
        child(client, experiment, parent, "model=b", seed, range(20, 32), tmp_path)  # worse in both seeds
    folder = tmp_path / "sweep"
    folder.mkdir()
    write_comparison(client, parent, SETTINGS, ["mnist"], folder)
    tags = client.get_run(parent).data.tags
    assert tags["compare.best"] == "model=a" and "compare.seeds_disagree" not in tags
