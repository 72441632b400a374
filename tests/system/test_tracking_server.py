"""A team's tracking server: `make server` on a loopback port, and with MLFLOW_TRACKING_URI as the only MLflow
setting, the fast `dvc repro`, sweeps through the joblib and the submitit launchers, a DVC experiment, predict and
`mlflow models serve`. Checked through the server's REST API; nothing may land in the repository's own mlruns/."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from pipeline import predict
from pipeline.data import idx
from tests.helpers.repos import ServedRepo, run
from tests.helpers.servers import TrackingServer, free_port, wait_for_http


def api(server: TrackingServer, endpoint: str, body: dict | None = None, **query: str) -> dict:
    """A call to the server's REST API: GET with `query`, or POST with a JSON `body`."""
    url = f"{server.url}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def artifact(server: TrackingServer, run_info: dict, path: str) -> bytes:
    """A run's artifact as the server's proxied artifact store hands it out."""
    root = run_info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    with urllib.request.urlopen(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}", timeout=60) as f:
        return f.read()


def runs_of(server: TrackingServer, experiment: str) -> list[dict]:
    exp = api(server, "experiments/get-by-name", experiment_name=experiment)["experiment"]
    assert exp["artifact_location"].startswith("mlflow-artifacts:"), exp  # uploaded over HTTP, stored by the server
    return api(server, "runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})["runs"]


def tags(r: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in r["data"].get("tags", [])}


def metrics(r: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in r["data"].get("metrics", [])}


# Small variants: what is checked is where runs and files land, not what they show (a report of one test set with
# few pictures; the whole report is the served pipeline's).
SMALL = ["experiment=fast", "data.train_limit=2000", "evaluate.limit=500", "data.test_sets=[mnist]"]
SMALL += ["report.max_misclassified=12", "report.grid_size=8", "report.confused_pairs=1"]


def assert_nothing_local(repo: ServedRepo) -> None:
    assert sorted(os.listdir(repo.path / "mlruns")) == ["README.md"]  # the committed note, nothing else


def test_the_pipeline_logs_run_metrics_reports_and_model_to_the_server(served_repo):
    s = served_repo
    r = api(s.server, "runs/get", run_id=s.run_id)["run"]
    assert r["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in r["data"]["params"]}
    assert params["model.name"] == "compact" and params["train.epochs"] == "1"
    for test_set in ("mnist", "emnist_digits"):
        assert 0.5 < metrics(r)[f"test.{test_set}.accuracy"] <= 1
    history = api(s.server, "metrics/get-history", run_id=s.run_id, metric_key="val_accuracy")["metrics"]
    assert [m["step"] for m in history] == [1]
    listed = {f["path"] for f in api(s.server, "artifacts/list", run_id=s.run_id, path="reports")["files"]}
    assert {"reports/summary.pdf", "reports/misclassified.pdf", "reports/curves.png"} <= listed
    assert artifact(s.server, r["info"], "reports/summary.pdf")[:5] == b"%PDF-"
    found = api(s.server, "logged-models/search", {"experiment_ids": [r["info"]["experiment_id"]]})["models"]
    (model,) = [m for m in found if m["info"].get("source_run_id") == s.run_id]
    assert model["info"]["name"] == "model" and model["info"]["artifact_uri"].startswith("mlflow-artifacts:")
    ref = json.loads((s.path / "models" / "run.json").read_text())
    assert ref["tracking_uri"] == s.server.url and ref["model_uri"] == f"models:/{model['info']['model_id']}"
    # The files went over HTTP into the server's artifact store, none into the repository.
    assert any((s.server.folder / "artifacts").rglob("summary.pdf"))
    assert_nothing_local(s)


def test_a_two_job_sweep_makes_its_parent_children_and_comparison_on_the_server(served_repo):
    """Through submitit's local launcher, the path SLURM takes (its jobs are processes of their own, as the joblib
    launcher's are: that one is tried on the local store by tests/system/test_sweep.py)."""
    s = served_repo
    launcher = "local"
    experiment = f"server-sweep-{launcher}"
    sweep_dir = s.path / "multirun" / launcher
    run(
        ["python", "-m", "pipeline.experiment", "-m", f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep_dir}"]
        + [*SMALL, f"tracking.experiment={experiment}", "model=plain1,plain3"],
        s.path,
        s.env,
    )
    runs = runs_of(s.server, experiment)
    parents = [r for r in runs if "mlflow.parentRunId" not in tags(r)]
    children = [r for r in runs if "mlflow.parentRunId" in tags(r)]
    assert len(parents) == 1 and len(children) == 2
    (parent,) = parents
    assert parent["info"]["status"] == "FINISHED"
    assert {tags(c)["mlflow.parentRunId"] for c in children} == {parent["info"]["run_id"]}
    assert {c["info"]["run_name"] for c in children} == {"model=plain1", "model=plain3"}
    assert all(c["info"]["status"] == "FINISHED" and "test.mnist.accuracy" in metrics(c) for c in children)
    listed = api(s.server, "artifacts/list", run_id=parent["info"]["run_id"], path="comparison")["files"]
    names = ("comparison.md", "comparison.csv", "runs.csv", "comparison.png")
    assert {f["path"] for f in listed} == {f"comparison/{name}" for name in names}
    table = artifact(s.server, parent["info"], "comparison/runs.csv").decode()
    assert "model=plain1,FINISHED" in table and "model=plain3,FINISHED" in table
    # The paired test read both children's predictions back through the server; the winner is its champion.
    variants = list(
        csv.DictReader(io.StringIO(artifact(s.server, parent["info"], "comparison/comparison.csv").decode()))
    )
    ensembles = [v for v in variants if v["verdict"] == "ensemble (not one model)"]  # the two runs averaged (#32)
    assert [v["test_set"] for v in ensembles] == ["mnist"]
    variants = [v for v in variants if v not in ensembles]
    assert [v["verdict"] == "best" for v in variants if v["test_set"] == "mnist"] == [True, False]
    assert all(v["p_vs_best"] for v in variants if v["verdict"] != "best")
    assert tags(parent)["compare.best"] == variants[0]["variant"]
    assert tags(parent)["compare.champion"].startswith("handwriting-mnist/")
    assert len(list((sweep_dir / ".submitit").glob("*/*_log.out"))) == 2  # really submitit: a job folder per variant
    assert_nothing_local(s)
    assert run(["git", "status", "--porcelain"], s.path, s.env).stdout == ""


def test_a_dvc_experiment_is_a_run_on_the_server(served_repo):
    s = served_repo
    settings = (a for x in SMALL for a in ("-S", x))  # up to evaluate, whose metric is checked
    run(["dvc", "exp", "run", "--temp", "-n", "on-the-server", "evaluate", *settings], s.path, s.env)
    (r,) = [r for r in runs_of(s.server, "handwriting-lab") if tags(r).get("dvc.experiment") == "on-the-server"]
    assert r["info"]["status"] == "FINISHED" and "test.mnist.accuracy" in metrics(r)
    assert tags(r)["git.commit"] == run(["git", "rev-parse", "HEAD"], s.path, s.env).stdout.strip()
    assert_nothing_local(s)


@pytest.fixture
def digits(mirror, tmp_path) -> Path:
    """Two MNIST test images as PNG files in a folder."""
    images = idx.parse_images(idx.read_bytes(mirror / "mnist" / "t10k-images-idx3-ubyte.gz"), "t10k")
    for i in range(2):
        Image.fromarray(images[i]).save(tmp_path / f"{i}.png")
    return tmp_path


def test_predict_takes_the_model_from_the_server(served_repo, digits, monkeypatch, capsys):
    s = served_repo
    monkeypatch.chdir(digits)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", s.server.url)
    try:
        assert predict.main([str(digits), "--model", str(s.path / "models" / "model.keras")]) == 0
        local = capsys.readouterr().out
        assert predict.main([str(digits), "--model", f"runs:/{s.run_id}/model"]) == 0
        assert capsys.readouterr().out == local  # the same model, the same probabilities
    finally:
        mlflow.set_tracking_uri(None)
    assert not (digits / "mlruns").exists()


def test_mlflow_models_serve_takes_the_model_from_the_server(served_repo, digits, tmp_path):
    s = served_repo
    model_uri = json.loads((s.path / "models" / "run.json").read_text())["model_uri"]  # models:/<model id>
    port = free_port()
    serve = ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    server = subprocess.Popen(
        [*serve, "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=s.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the CLI starts uvicorn as a child: stop the whole group at the end
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", server, "mlflow models serve")
        images = np.stack([np.asarray(Image.open(digits / f"{i}.png"), np.float32) for i in range(2)])
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"inputs": images.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        predictions = np.asarray(json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"])
        assert predictions.shape == (2, 10) and np.allclose(predictions.sum(axis=1), 1, atol=1e-3)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert not (tmp_path / "mlruns").exists()
