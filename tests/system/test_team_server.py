"""A team's tracking server: `make server DB=postgresql://… LOGINS=yes` on a real PostgreSQL and MLflow's basic-auth
app. A client without a login is refused in one line before any work; with one, a team member trains (the tiny
setting), evaluates and registers a model, another promotes it to champion and predicts with it, and all of it is
in PostgreSQL, none of it in the client's folder."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import psycopg
import pytest
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient
from PIL import Image

from pipeline import predict
from pipeline.core.errors import UserError
from pipeline.evaluate import evaluate
from pipeline.promote import main as promote_main
from pipeline.tracking import store
from pipeline.train import train
from tests.helpers.configs import tiny_config
from tests.helpers.repos import REPO, entrypoint, stage_env
from tests.helpers.servers import TeamServer

pytestmark = pytest.mark.slow  # PostgreSQL, `make server` and its workers: processes of their own

ADA = ("ada", "ada-trains-models-7")  # a team member who trains
BO = ("bo", "bo-picks-champions-9")  # another, who promotes
CHEAPEST = ["model=plain1", "augment=none", "train.precision=float32"]  # what is stored matters, not how it trained


@pytest.fixture(scope="module")
def team(team_server) -> TeamServer:
    """The server with two members, made as its admin makes them (docs/scaling.md)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        mp.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin_password)
        admin = get_app_client("basic-auth", tracking_uri=team_server.url)
        for name, password in (ADA, BO):
            admin.create_user(name, password)
    return team_server


def log_in(monkeypatch: pytest.MonkeyPatch, server: TeamServer, user: tuple[str, str] | None) -> None:
    """A user's shell: the server's URL, and the user's login if any."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    for var, value in zip(("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"), user or (None, None)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)


def status(url: str, user: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


def wants_login(url: str) -> str:
    return (
        f"MLflow tracking server {url} (MLFLOW_TRACKING_URI) wants a login — set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD (an account from its admin)"
    )


def test_the_api_wants_a_login_and_the_admin_password_is_private(team):
    search = f"{team.url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert status(f"{team.url}/health") == 200  # a load balancer's question needs no login
    assert status(search) == 401
    assert status(search, ("admin", "password1234")) == 401  # MLflow's old default is no way in
    assert status(search, ("admin", team.admin_password)) == 200
    assert status(search, ADA) == 200
    for name in ("admin-password", "secret-key", "basic_auth.ini"):
        assert stat.S_IMODE((team.folder / name).stat().st_mode) == 0o600, name
    assert len(team.admin_password) >= 32


def test_a_client_without_a_login_is_refused_in_one_line(team, tmp_path):
    result = entrypoint(["-m", "pipeline.promote", "0123456789abcdef"], tmp_path, MLFLOW_TRACKING_URI=team.url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {wants_login(team.url)}"]
    assert os.listdir(tmp_path) == []


def test_training_without_a_login_stops_before_it_starts(team, tiny, monkeypatch):
    log_in(monkeypatch, team, None)
    with pytest.raises(UserError) as refused:
        train(tiny, "never trained")
    assert str(refused.value) == wants_login(team.url)
    assert not Path("models").exists()


def test_a_wrong_password_is_refused_naming_the_user(team, monkeypatch):
    log_in(monkeypatch, team, (ADA[0], "not-adas-password"))
    (problem,) = store.server_problems({"uri": "sqlite:///mlruns/mlflow.db"})
    assert problem == (
        f"MLflow tracking server {team.url} (MLFLOW_TRACKING_URI) refused the login of 'ada' "
        "(MLFLOW_TRACKING_USERNAME) — check it and MLFLOW_TRACKING_PASSWORD, or ask the server's admin"
    )


def test_a_team_trains_registers_promotes_and_predicts_through_postgresql(team, tiny, monkeypatch, capsys, tmp_path):
    log_in(monkeypatch, team, ADA)
    cfg = tiny_config(CHEAPEST)
    run_id = train(cfg, "ada on the team server")
    evaluate(cfg)
    mlflow.set_tracking_uri(None)
    capsys.readouterr()  # what train and evaluate printed

    log_in(monkeypatch, team, BO)  # another member promotes ada's model
    assert promote_main([run_id]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    client = MlflowClient(team.url)
    # The session's server is shared (the SLURM sweep registers versions too): ada's is whichever number it got.
    (version,) = client.search_model_versions(f"run_id = '{run_id}'")
    assert line.startswith(
        f"champion: handwriting-mnist version {version.version} (run {run_id}, test.mnist.accuracy 0."
    )
    assert client.get_model_version_by_alias("handwriting-mnist", "champion").run_id == run_id
    inputs = client.get_run(run_id).inputs.dataset_inputs
    contexts = {(i.dataset.name, t.value) for i in inputs for t in i.tags if t.key == "mlflow.data.context"}
    assert contexts == {("mnist", "training"), ("mnist", "validation"), ("mnist", "test"), ("emnist_digits", "test")}
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(tmp_path / "line.png")
    assert predict.main([str(tmp_path / "line.png"), "--model", "models:/handwriting-mnist@champion"]) == 0
    mlflow.set_tracking_uri(None)

    # Where it all went: the database and the server's artifact folder; the client's store is untouched.
    with psycopg.connect(team.database, password=team.database_password) as db:
        assert db.execute("select status from runs where run_uuid = %s", (run_id,)).fetchone() == ("FINISHED",)
        alias = "select version from registered_model_aliases where name = 'handwriting-mnist' and alias = 'champion'"
        assert db.execute(alias).fetchone() == (int(version.version),)
        assert {"mnist", "emnist_digits"} <= {r[0] for r in db.execute("select name from datasets")}
        assert {"admin", "ada", "bo"} <= {r[0] for r in db.execute("select username from users")}
    assert any((team.folder / "artifacts").rglob("model.keras")) or any((team.folder / "artifacts").rglob("MLmodel"))
    assert sorted(os.listdir("mlruns")) == ["mlflow.db"]


def test_make_server_refuses_mlflows_old_default_admin_password(tmp_path):
    venv = Path(sys.prefix)
    env = {**stage_env(None), "MLFLOW_AUTH_ADMIN_PASSWORD": "password1234"}
    result = subprocess.run(
        ["make", "-s", "-C", str(REPO), f"VENV={venv}", "-o", f"{venv}/.installed", "server"]
        + [f"SERVER_DIR={tmp_path}", "LOGINS=yes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        "error: MLFLOW_AUTH_ADMIN_PASSWORD: password1234 is the admin password MLflow used to ship, which anyone can "
        "guess — choose another, or unset MLFLOW_AUTH_ADMIN_PASSWORD to have one made"
    )
    assert not (tmp_path / "mlflow.db").exists()
