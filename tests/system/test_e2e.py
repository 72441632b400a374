"""The real pipeline, end to end: `dvc repro` with the fast setting in a fresh copy of the repository with no
mirror, the real data downloaded from a loopback server; then a look inside the MLflow store it wrote, and what
DVC does when the raw data changes."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipeline.data import idx
from tests.helpers.idx import write_idx
from tests.helpers.repos import run
from tests.helpers.stage_outputs import TEST_SET_FILES as REPORT_FILES

STAGES = ("fetch", "ingest", "train", "evaluate", "label_issues", "report")


@pytest.fixture(scope="module")
def repo(fast_repo):
    return fast_repo.path, fast_repo.env, fast_repo.first_repro


def client(path: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{path}/mlruns/mlflow.db")


def the_run(path: Path):
    run_id = json.loads((path / "models" / "run.json").read_text())["run_id"]
    return client(path).get_run(run_id)


def test_repro_runs_every_stage_in_order(repo):
    _, _, out = repo
    positions = [out.index(f"Running stage '{s}'") for s in STAGES]
    assert positions == sorted(positions)


def test_mlflow_run_holds_params_epoch_metrics_test_metrics_and_reports(repo):
    path, _, _ = repo
    r = the_run(path)
    assert r.info.status == "FINISHED"
    assert r.data.params["train.epochs"] == "1" and r.data.params["model.name"] == "compact"
    policy = yaml.safe_load((path / "params.yaml").read_text())["augment"]  # the default policy, as DVC composed it
    assert r.data.params["augment.rotation_degrees"] == str(policy["rotation_degrees"])
    assert r.data.params["augment.name"] == policy["name"] and r.data.params["data.train_limit"] == "10000"
    c = client(path)
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert [m.step for m in c.get_metric_history(r.info.run_id, metric)] == [1], metric
    for test_set in ("mnist", "emnist_digits"):
        assert 0.5 < r.data.metrics[f"test.{test_set}.accuracy"] <= 1.0, test_set
        assert r.data.metrics[f"test.{test_set}.loss"] > 0
    assert "byclass" in r.data.tags["dataset.test.emnist_digits"]
    for pdf in ("reports/misclassified.pdf", "reports/misclassified_EMNIST.pdf", "reports/summary.pdf"):
        assert Path(c.download_artifacts(r.info.run_id, pdf)).read_bytes()[:5] == b"%PDF-", pdf


def test_mlflow_run_records_its_datasets_and_registers_its_model(repo):
    path, _, _ = repo
    r = the_run(path)
    inputs = {
        (i.dataset.name, {t.key: t.value for t in i.tags}["mlflow.data.context"]): i.dataset
        for i in r.inputs.dataset_inputs
    }
    images = {("mnist", "training"): 9000, ("mnist", "validation"): 1000, ("mnist", "test"): 2000}
    images[("emnist_digits", "test")] = 2000  # evaluate.limit
    assert {key: json.loads(d.profile)["features_shape"][0] for key, d in inputs.items()} == images
    assert {json.loads(d.source)["uri"] for d in inputs.values()} == {
        "data/prepared/mnist.npz",
        "data/prepared/emnist_digits.npz",
    }
    assert len({d.digest for d in inputs.values()}) == 4
    (version,) = client(path).search_model_versions(f"run_id = '{r.info.run_id}'")
    assert version.name == "handwriting-mnist"
    assert r.data.tags["model.registered"] == f"handwriting-mnist/{version.version}"


def test_every_report_artefact_is_in_the_run_for_every_test_set(repo):
    path, _, _ = repo
    r = the_run(path)
    c = client(path)
    top = {a.path for a in c.list_artifacts(r.info.run_id, "reports")}
    expected = ("curves.png", "samples.png", "augmented.png", "class_distribution.png", "summary.pdf")
    assert {f"reports/{f}" for f in expected} <= top
    for test_set in ("mnist", "emnist_digits"):
        files = {a.path for a in c.list_artifacts(r.info.run_id, f"reports/{test_set}")}
        assert files == {f"reports/{test_set}/{f}" for f in REPORT_FILES}, test_set
        table = json.loads(Path(c.download_artifacts(r.info.run_id, f"tables/per_class_{test_set}.json")).read_text())
        assert table["columns"] == ["class", "precision", "recall", "f1", "support"] and len(table["data"]) == 10
        for metric in ("macro_f1", "ece", "macro_precision", "macro_recall"):
            assert f"test.{test_set}.{metric}" in r.data.metrics


def test_dvc_plots_render(repo):
    path, env, _ = repo
    out = run(["dvc", "plots", "show", "--json"], path, env).stdout
    shown = json.loads(out)["data"]
    assert set(shown) == {
        "Loss",
        "Accuracy",
        "Learning rate",
        "plots/confusion/mnist.csv",
        "plots/confusion/emnist_digits.csv",
        "plots/per_class/mnist.csv",
        "plots/per_class/emnist_digits.csv",
    }
    assert all(plot[0]["type"] == "vega" and "error" not in plot[0] for plot in shown.values())
    run(["dvc", "plots", "show", "-o", str(path / "dvc_plots")], path, env)
    assert (path / "dvc_plots" / "index.html").stat().st_size > 1000


def test_logged_model_scores_a_batch_of_images(repo, mirror):
    path, _, _ = repo
    r = the_run(path)
    mlflow.set_tracking_uri(f"sqlite:///{path}/mlruns/mlflow.db")
    model = mlflow.pyfunc.load_model(f"runs:/{r.info.run_id}/model")
    x = idx.parse_images(idx.read_bytes(mirror / "mnist" / "t10k-images-idx3-ubyte.gz"), "t10k")[:64]
    y = idx.parse_labels(idx.read_bytes(mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"), "t10k")[:64]
    probs = np.asarray(model.predict(x.astype(np.float32)))
    assert probs.shape == (64, 10)
    assert np.mean(probs.argmax(axis=1) == y) > 0.5  # one epoch on 10,000 images is well past chance
    # Serving needs TensorFlow and Keras at the versions that trained it, and says so.
    requirements = Path(mlflow.artifacts.download_artifacts(f"runs:/{r.info.run_id}/model/requirements.txt"))
    pinned = requirements.read_text().split()
    assert f"tensorflow=={version('tensorflow')}" in pinned and f"keras=={version('keras')}" in pinned


def test_dvc_metrics_are_the_headline_scores_per_test_set(repo):
    """Accuracy and loss per test set are the DVC metrics, one `dvc exp show` column each; the other scores are in
    metrics/test_details.json, which `dvc metrics show` reads when named; per-class tables are plots."""
    path, env, _ = repo
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], path, env).stdout)
    files = next(iter(shown.values()))["data"]
    assert set(files) == {"metrics/test.json", "metrics/label_issues.json"}
    flagged = files["metrics/label_issues.json"]["data"]
    assert set(flagged) == {"mnist", "emnist_digits"}
    assert all(0 <= f["flagged_errors"] <= min(f["flagged"], f["errors"]) for f in flagged.values())
    data = files["metrics/test.json"]["data"]
    assert set(data) == {"mnist", "emnist_digits"}
    assert all(set(scores) == {"accuracy", "loss"} for scores in data.values())
    named = ["dvc", "metrics", "show", "--json", "metrics/test_details.json"]
    details = next(iter(json.loads(run(named, path, env).stdout).values()))["data"]
    details = details["metrics/test_details.json"]["data"]
    assert set(details) == {"mnist", "emnist_digits"}
    assert {"accuracy_ci_low", "accuracy_ci_high", "macro_f1", "ece", "images"} <= set(details["mnist"])
    assert details["mnist"]["accuracy_ci_low"] < data["mnist"]["accuracy"] < details["mnist"]["accuracy_ci_high"]
    per_class = (path / "plots" / "per_class" / "emnist_digits.csv").read_text().splitlines()
    assert per_class[0] == "class,accuracy" and [r.split(",")[0] for r in per_class[1:]] == list("0123456789")


def test_the_raw_data_is_dvc_tracked_and_came_from_the_server(repo):
    path, _, out = repo
    lock = yaml.safe_load((path / "dvc.lock").read_text())["stages"]
    outs = {o["path"]: o for o in lock["fetch"]["outs"]}
    assert set(outs) == {"data/raw/mnist", "data/raw/emnist"}
    assert outs["data/raw/emnist"]["nfiles"] == 6 and outs["data/raw/emnist"]["md5"].endswith(".dir")
    assert {d["path"] for d in lock["ingest"]["deps"]} >= {"data/raw/mnist", "data/raw/emnist"}
    assert "md5 verified" in out and "127.0.0.1" in out


def test_second_repro_runs_nothing(repo):
    path, env, _ = repo
    out = run(["dvc", "repro"], path, env).stdout
    assert "Running stage" not in out, out


def test_changing_a_report_setting_reruns_only_report(repo, fast_repo):
    path, env, _ = repo
    run(["python", "-m", "pipeline.compose", *fast_repo.compose, "report.per_page=8"], path, env)
    out = run(["dvc", "repro"], path, env).stdout
    assert [s for s in STAGES if f"Running stage '{s}'" in out] == ["report"], out


def test_a_raw_file_added_by_hand_is_seen_and_acted_on(repo, mirror):
    """NIST's official digits test split, copied into data/raw/emnist by hand: `dvc status` names the raw folder,
    `dvc repro` redoes ingest and what uses EMNIST digits, not training; then it is a no-op again."""
    path, env, _ = repo
    raw = path / "data" / "raw" / "emnist"
    for name in ("emnist-digits-mapping.txt", "emnist-digits-test-labels-idx1-ubyte.gz"):
        shutil.copy(mirror / "emnist" / name, raw)
    # Its real labels; our mirror lacks its images, so each is an MNIST test image of the same class, stored
    # transposed as NIST stores them.
    labels = idx.parse_labels(idx.read_bytes(raw / "emnist-digits-test-labels-idx1-ubyte.gz"), "labels")
    x = idx.parse_images(idx.read_bytes(path / "data" / "raw" / "mnist" / "t10k-images-idx3-ubyte"), "x")
    y = idx.parse_labels(idx.read_bytes(path / "data" / "raw" / "mnist" / "t10k-labels-idx1-ubyte"), "y")
    pick = np.array([np.flatnonzero(y == label)[i % 800] for i, label in enumerate(labels)])
    write_idx(raw / "emnist-digits-test-images-idx3-ubyte.gz", x[pick].transpose(0, 2, 1))

    status = json.loads(run(["dvc", "status", "--json"], path, env).stdout)
    assert status == {
        "fetch": [{"changed outs": {"data/raw/emnist": "modified"}}],
        "ingest": [{"changed deps": {"data/raw/emnist": "modified"}}],
    }
    out = run(["dvc", "repro"], path, env).stdout
    assert [s for s in STAGES if f"Running stage '{s}'" in out] == [
        "fetch",
        "ingest",
        "evaluate",
        "label_issues",
        "report",
    ], out
    assert "using EMNIST digits test (0 train, 40000 test images" in out
    assert "EMNIST digits test" in the_run(path).data.tags["dataset.test.emnist_digits"]
    assert "Running stage" not in run(["dvc", "repro"], path, env).stdout
    assert sorted(p.name for p in raw.iterdir() if "digits" in p.name) == [
        "emnist-digits-mapping.txt",
        "emnist-digits-test-images-idx3-ubyte.gz",
        "emnist-digits-test-labels-idx1-ubyte.gz",
    ]


def test_dvc_exp_run_set_param_really_trains_that_many_epochs(repo):
    path, env, _ = repo
    run(["git", "add", "-A"], path, env)
    run(["git", "commit", "-q", "-m", "fast"], path, env)
    # On a fifth of the fast setting's images, up to evaluate (the crash test below needs its metrics): what is
    # checked is the number of epochs trained; the stages after are dvc repro's as for any change (above).
    settings = ["experiment=fast", "train.epochs=2", "data.train_limit=2000"]
    run(["dvc", "exp", "run", "evaluate", *(arg for setting in settings for arg in ("-S", setting))], path, env)
    history = json.loads((path / "models" / "history.json").read_text())
    assert history["epochs_run"] == 2
    assert the_run(path).data.params["train.epochs"] == "2"


def test_a_crash_marks_the_run_failed_and_keeps_what_was_logged(repo):
    path, env, _ = repo
    (path / "predictions" / "mnist.npz").unlink()
    result = run(
        [
            "python",
            "-m",
            "pipeline.report",
            "--config-dir",
            ".",
            "--config-name",
            "params",
            "hydra.run.dir=.",
            "hydra.output_subdir=null",
        ],
        path,
        env,
        check=False,
    )
    assert result.returncode != 0 and "mnist.npz" in result.stderr
    r = the_run(path)
    assert r.info.status == "FAILED"
    assert "test.mnist.accuracy" in r.data.metrics
