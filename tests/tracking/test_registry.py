"""The Model Registry on a real embedded store: every training registers a version of its dataset's model,
`promote` and its command give a run's version an alias, and `predict` loads a model by that alias.

One tiny project for the module: a training on the `tiny` data that is evaluated, a second one with another seed
(other weights) that is not, and a run without a model."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from pipeline import predict
from pipeline.evaluate import evaluate
from pipeline.promote import main as promote_main
from pipeline.tracking.registry import RegistryError, model_name, promote
from pipeline.train import train
from tests.helpers.configs import tiny_config
from tests.helpers.repos import REPO, run, stage_env
from tests.helpers.synthetic import synthetic_dataset, tiny_workdir


@dataclass(frozen=True)
class Project:
    folder: Path
    first: str  # a training, evaluated: version 1
    second: str  # the next training, seed 7: version 2
    no_model: str  # a run that logged no model
    client: MlflowClient


@pytest.fixture(scope="module")
def project(tmp_path_factory, empty_store) -> Project:
    folder = tmp_path_factory.mktemp("registry")
    # The smallest network, unaugmented, in float32: what is registered matters here, not how it was trained.
    cheapest = ["model=plain1", "augment=none", "train.precision=float32"]
    with pytest.MonkeyPatch.context() as mp, tiny_workdir(folder, mp, empty_store):
        cfg = tiny_config(cheapest)
        first = train(cfg, "first")
        evaluate(cfg)
        second = train(tiny_config([*cheapest, "seed=7"]), "second")
        with mlflow.start_run(run_name="no model") as bare:
            pass
        yield Project(folder, first, second, bare.info.run_id, MlflowClient(f"sqlite:///{folder}/mlruns/mlflow.db"))


def champion_run(project: Project, alias: str = "champion") -> str:
    return project.client.get_model_version_by_alias("handwriting-mnist", alias).run_id


def test_model_name_is_the_projects_and_the_datasets_in_hyphens():
    assert model_name("mnist") == "handwriting-mnist"
    assert model_name("emnist_balanced") == "handwriting-emnist-balanced"
    assert model_name("emnist_digits") == "handwriting-emnist-digits"


def test_each_training_registers_the_next_version_of_its_datasets_model(project):
    versions = project.client.search_model_versions("name = 'handwriting-mnist'")
    assert sorted((int(v.version), v.run_id) for v in versions) == [(1, project.first), (2, project.second)]
    for number, run_id in ((1, project.first), (2, project.second)):
        tags = project.client.get_run(run_id).data.tags
        assert tags["model.registered"] == f"handwriting-mnist/{number}"


def test_promote_gives_the_alias_to_the_runs_version_and_takes_it_from_any_other(project):
    first = promote(project.first, client=project.client)
    assert (first.name, first.version, first.run_id) == ("handwriting-mnist", 1, project.first)
    assert first.aliases == ["champion"]
    assert champion_run(project) == project.first
    second = promote(project.second, client=project.client)
    assert second.version == 2 and second.aliases == ["champion"]
    assert champion_run(project) == project.second
    assert project.client.get_model_version("handwriting-mnist", "1").aliases == []


def test_another_alias_leaves_the_champion_where_it_is(project):
    promote(project.second, client=project.client)
    assert promote(project.first, "candidate", project.client).aliases == ["candidate"]
    assert (champion_run(project), champion_run(project, "candidate")) == (project.second, project.first)


def test_promote_uses_the_current_tracking_uri_without_a_client(project):
    mlflow.set_tracking_uri(f"sqlite:///{project.folder}/mlruns/mlflow.db")
    promote(project.first)
    assert champion_run(project) == project.first


def test_promote_refuses_an_unknown_run_a_run_without_a_model_and_a_reserved_alias(project):
    store = f"sqlite:///{project.folder}/mlruns/mlflow.db"
    with pytest.raises(RegistryError, match=rf"^run nope: no such run in {store} — give a run id from `mlflow ui`"):
        promote("nope", client=project.client)
    with pytest.raises(RegistryError, match=rf"^run {project.no_model} \(no model\) has no registered model: "):
        promote(project.no_model, client=project.client)
    with pytest.raises(RegistryError, match=r"^alias 'latest': .*reserved"):
        promote(project.first, "latest", project.client)


# The command


def test_the_command_promotes_and_prints_the_version_and_the_runs_test_accuracy(project, capsys):
    assert promote_main([project.first]) == 0
    accuracy = project.client.get_run(project.first).data.metrics["test.mnist.accuracy"]
    assert capsys.readouterr().out == (
        f"champion: handwriting-mnist version 1 (run {project.first}, test.mnist.accuracy {accuracy:.4f})\n"
    )
    assert promote_main([project.second, "--alias", "candidate"]) == 0
    assert capsys.readouterr().out == (
        f"candidate: handwriting-mnist version 2 (run {project.second}, not evaluated)\n"
    )
    assert (champion_run(project), champion_run(project, "candidate")) == (project.first, project.second)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "error: run nope: no such run in sqlite:///"),
        (["{no_model}"], "error: run {no_model} (no model) has no registered model"),
        (["{first}", "--alias", "v2"], "error: alias 'v2': "),
    ],
)
def test_the_commands_mistakes_are_one_line_and_exit_status_1(project, user_error, args, message):
    ids = {"no_model": project.no_model, "first": project.first}
    out, err = user_error(lambda: promote_main([a.format(**ids) for a in args]))
    assert out == "" and err.startswith(message.format(**ids)) and err.count("\n") == 1, err


@pytest.mark.parametrize("run_id", ["", "x' or run_id != '", "a b", "\n", "../run.json"])
def test_a_malformed_run_id_is_one_line(project, user_error, run_id):
    out, err = user_error(lambda: promote_main([run_id]))
    shown = repr(run_id).replace("\n", "\\n")
    assert out == "" and err == (
        f"error: run {shown}: not a run id — give one from `mlflow ui` or models/run.json (32 hex digits)\n"
    )


@pytest.fixture(scope="module")
def unfinished(project) -> dict[str, str]:
    """A KILLED and a FAILED run, each with a registered version (as a training run has when its evaluation, which
    reopens it, is interrupted or fails), of a model of their own: the runs' ids by status."""
    client = project.client
    experiment = client.get_run(project.first).info.experiment_id
    (trained,) = client.search_model_versions(f"run_id = '{project.first}'")
    client.create_registered_model("handwriting-unfinished")
    ids = {}
    for status in ("KILLED", "FAILED"):
        run = client.create_run(experiment, run_name=status.lower())
        client.create_model_version("handwriting-unfinished", trained.source, run.info.run_id)
        client.set_terminated(run.info.run_id, status)
        ids[status] = run.info.run_id
    return ids


@pytest.mark.parametrize("status", ["KILLED", "FAILED"])
def test_a_run_that_did_not_finish_is_refused_and_the_champion_stays(project, unfinished, user_error, status):
    run_id = unfinished[status]
    promote(project.first, "champion", project.client)
    with pytest.raises(RegistryError, match=rf"^run {run_id} \({status.lower()}\) is {status}, not FINISHED: "):
        promote(run_id, "champion", project.client)
    out, err = user_error(lambda: promote_main([run_id]))
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: run {run_id} ({status.lower()}) is {status}, not FINISHED: ")
    assert err.endswith(f"`python -m pipeline.promote {run_id} --force` to promote this one anyway\n")
    assert champion_run(project) == project.first
    aliases = [v.aliases for v in project.client.search_model_versions("name = 'handwriting-unfinished'")]
    assert aliases == [[], []]


def test_force_promotes_a_run_that_did_not_finish_and_says_what_it_overrode(project, unfinished, capsys):
    run_id = unfinished["KILLED"]
    assert promote_main([run_id, "--force"]) == 0
    out = capsys.readouterr()
    assert out.err == f"promote: run {run_id} is KILLED, not FINISHED: promoted anyway, as --force asks\n"
    assert out.out == f"champion: handwriting-unfinished version 1 (run {run_id}, not evaluated)\n"
    assert project.client.get_model_version_by_alias("handwriting-unfinished", "champion").run_id == run_id
    assert promote_main([project.first, "--force"]) == 0  # a finished run: nothing to override, nothing said
    assert capsys.readouterr().err == ""


def test_the_command_reads_mlflow_tracking_uri(project, empty_store, tmp_path, monkeypatch, user_error):
    other = shutil.copy(empty_store, tmp_path / "other.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    _, err = user_error(lambda: promote_main([project.first]))  # the run is in the project's store, not in this one
    assert err.startswith(f"error: run {project.first}: no such run in sqlite:///{other} ")


def test_the_command_outside_a_project_names_the_store_it_did_not_find(project, tmp_path, monkeypatch, user_error):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # which mlflow.set_tracking_uri sets, here in the test process
    _, err = user_error(lambda: promote_main([project.first]))
    assert err == (
        f"error: {tmp_path}/mlruns/mlflow.db: no MLflow store — run this in the project's folder, where "
        "`dvc repro` made it, or set MLFLOW_TRACKING_URI to the store to use\n"
    )
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("sqlite:///{tmp}/typo/mlflow.db", "no MLflow store at {tmp}/typo/mlflow.db — check the path (MLflow would "),
        ("{tmp}/mlruns", "a path, not a tracking store's URI — a SQLite store is sqlite:///<its .db file>, a "),
        ("mongodb://db.lab/mlflow", "mongodb://, not a tracking store's scheme — a SQLite store is "),
    ],
)
def test_the_command_never_makes_a_store_and_refuses_a_uri_that_is_not_one(
    uri, says, tmp_path, monkeypatch, user_error
):
    """A mistyped SQLite path made a new, empty store (about 1 MB) before "no such run"; a bare path or an unknown
    scheme ended in MLflow's traceback."""
    uri, says = uri.format(tmp=tmp_path), says.format(tmp=tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    out, err = user_error(lambda: promote_main(["0123456789abcdef0123456789abcdef"]))
    assert out == "" and err.startswith(f"error: {uri} (MLFLOW_TRACKING_URI): {says}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # starts a Python process
def test_the_command_from_the_shell_prints_no_traceback(project):
    env = {k: v for k, v in stage_env(None).items() if k != "HYDRA_FULL_ERROR"}  # which adds the traceback
    env["PYTHONPATH"] = str(REPO)
    result = run([sys.executable, "-m", "pipeline.promote", "nope"], project.folder, env, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: run nope: no such run in sqlite:///") and result.stderr.count("\n") == 1


# Predicting with the model an alias names


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "image.png"
    Image.fromarray(synthetic_dataset(10, 0, 1, seed=3).x_test[0]).save(path)
    return path


def test_predict_loads_the_version_the_alias_names(project, image, capsys):
    promote(project.first, client=project.client)
    assert predict.main([str(image), "--model", "models:/handwriting-mnist@champion", "--json", "--top", "10"]) == 0
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    predicted = [p for _, p in sorted((int(t["class"]), t["probability"]) for t in result["top"])]
    x = predict.load_image(image)[None].astype(np.float32)
    first, second = (
        mlflow.tensorflow.load_model(f"runs:/{run_id}/model").predict(x, verbose=0)[0]
        for run_id in (project.first, project.second)
    )
    assert np.abs(first - second).max() > 1e-3, "the two versions must differ for this test to tell them apart"
    np.testing.assert_allclose(predicted, first, atol=1e-6)


def test_predict_with_an_alias_no_version_has_is_one_line_and_exit_status_1(project, image, user_error):
    out, err = user_error(lambda: predict.main([str(image), "--model", "models:/handwriting-mnist@nothere"]))
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith(
        f"error: models:/handwriting-mnist@nothere: Registered model alias nothere not found "
        f"(store sqlite:///{project.folder}/mlruns/mlflow.db)"
    )
    assert "python -m pipeline.promote RUN_ID" in err
