"""A team's tracking server: `make server DB=postgresql://… LOGINS=yes` on a real PostgreSQL, MLflow's basic-auth app
and the team's rules (pipeline/tracking/team_app.py). A client without a login is refused in one line before any
work; with one, a team member trains (the tiny setting), evaluates and registers a model, a maintainer promotes it to
champion and predicts with it, and all of it is in PostgreSQL, none of it in the client's folder. Who may do what:
every action a member could take against another's work, tried by the owner, another member, a maintainer and the
admin, each allowed or refused (403) as docs/scaling.md's table says, and the database read after each; the
password policy; `make member` and `make maintainer`."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import psycopg
import pytest
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient
from PIL import Image

from pipeline import predict
from pipeline import team as team_tool
from pipeline.compare import main as compare_main
from pipeline.core.errors import UserError
from pipeline.core.files import write_json
from pipeline.evaluate import evaluate
from pipeline.promote import main as promote_main
from pipeline.sweeps.callback import SWEEP_FILE, crown, parent_name
from pipeline.tracking import store
from pipeline.train import train
from tests.helpers.configs import tiny_config
from tests.helpers.measured import followed
from tests.helpers.repos import REPO, entrypoint, stage_env
from tests.helpers.servers import TeamServer

pytestmark = pytest.mark.slow  # PostgreSQL, `make server` and its workers: processes of their own

ADA = ("ada", "trains-models-every-day-7")  # a team member who trains
CY = ("cy", "also-trains-models-8")  # another member
BO = ("bo", "picks-the-champions-9")  # a maintainer, who promotes
CHEAPEST = ["model=plain1", "augment=none", "train.precision=float32"]  # what is stored matters, not how it trained


@pytest.fixture(scope="module")
def team(team_server) -> TeamServer:
    """The server with two members and a maintainer, made as its admin makes them (pipeline/team.py)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        mp.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin_password)
        admin = get_app_client("basic-auth", tracking_uri=team_server.url)
        for (name, password), maintainer in ((ADA, False), (CY, False), (BO, True)):
            team_tool.add(admin, name, team_server.folder, maintainer, {team_tool.NEW_PASSWORD_ENV: password})
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
    assert "View run" not in capsys.readouterr().out  # what train and evaluate printed: not MLflow's URL lines

    log_in(monkeypatch, team, BO)  # a maintainer promotes ada's model
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


# Who may do what (docs/scaling.md#who-may-do-what): ada owns the run and registered the model's first version, cy is
# another member, bo a maintainer. Each action is tried on fresh work of ada's by each of them and the admin.
ACTORS = {"ada": ADA, "cy": CY, "bo": BO}
OWNER = {"ada", "admin"}
MAINTAINERS = {"bo", "admin"}
EVERYONE = {"ada", "cy", "bo", "admin"}


@dataclass(frozen=True)
class Work:
    run_id: str
    model: str
    experiment: str = ""


def new_version(work: Work) -> dict:
    return {"name": work.model, "source": f"runs:/{work.run_id}/model", "run_id": work.run_id}


ACTIONS: dict[str, tuple[Callable[[Work], tuple[str, str, dict]], set[str]]] = {
    "move @champion": (
        lambda w: ("POST", "registered-models/alias", {"name": w.model, "alias": "champion", "version": "2"}),
        MAINTAINERS,
    ),
    "delete @champion": (
        lambda w: ("DELETE", "registered-models/alias", {"name": w.model, "alias": "champion"}),
        MAINTAINERS,
    ),
    "mark the run FAILED": (lambda w: ("POST", "runs/update", {"run_id": w.run_id, "status": "FAILED"}), OWNER),
    "log a metric into the run": (
        lambda w: ("POST", "runs/log-metric", {"run_id": w.run_id, "key": "test.mnist.accuracy", "value": 1.0}),
        OWNER,
    ),
    "set the run's mlflow.user": (
        lambda w: ("POST", "runs/set-tag", {"run_id": w.run_id, "key": "mlflow.user", "value": "someone-else"}),
        OWNER,
    ),
    "rename the run": (lambda w: ("POST", "runs/update", {"run_id": w.run_id, "run_name": "renamed"}), OWNER),
    "delete the run": (lambda w: ("POST", "runs/delete", {"run_id": w.run_id}), OWNER),
    "upload a file into the run": (
        lambda w: ("PUT", f"mlflow-artifacts/artifacts/{w.experiment}/{w.run_id}/artifacts/report.txt", b"mine"),
        OWNER,
    ),
    "register a version": (lambda w: ("POST", "model-versions/create", new_version(w)), EVERYONE),
    "rename the registered model": (
        lambda w: ("POST", "registered-models/rename", {"name": w.model, "new_name": f"{w.model}-renamed"}),
        MAINTAINERS,
    ),
    "delete the registered model": (lambda w: ("DELETE", "registered-models/delete", {"name": w.model}), MAINTAINERS),
}


def call(server: TeamServer, user: tuple[str, str], method: str, endpoint: str, body: dict | bytes) -> tuple[int, dict]:
    """One call of MLflow's REST API as `user` (a file's bytes to an artifact route): the HTTP status and the answer
    (MLflow's error, when refused)."""
    body = {"timestamp": 0, "step": 0, **body} if endpoint == "runs/log-metric" else body
    url = f"{server.url}/api/2.0/{'' if endpoint.startswith('mlflow-artifacts/') else 'mlflow/'}{endpoint}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
    request.add_header("Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        text = err.read().decode()
        return err.code, json.loads(text) if text.startswith("{") else {"message": text}  # MLflow's 403 is text


def ok(server: TeamServer, user: tuple[str, str], method: str, endpoint: str, body: dict) -> dict:
    code, answer = call(server, user, method, endpoint, body)
    assert code == 200, (endpoint, user[0], answer)
    return answer


def admin(server: TeamServer) -> tuple[str, str]:
    return ("admin", server.admin_password)


@pytest.fixture(scope="module")
def experiment(team) -> str:
    return ok(team, ADA, "POST", "experiments/create", {"name": "team-roles"})["experiment_id"]


def adas_work(server: TeamServer, experiment: str, model: str | None = None) -> Work:
    """A run of ada's; with a `model`, a registered model of hers with her version 1 and cy's version 2, @champion on
    1 (set by the admin). The client claims the run is someone else's: the server writes whose it is."""
    run = ok(server, ADA, "POST", "runs/create", {"experiment_id": experiment, "user_id": "someone-else"})["run"]
    work = Work(run["info"]["run_id"], model or "", experiment)
    if model:
        ok(server, ADA, "POST", "registered-models/create", {"name": model})
        for user in (ADA, CY):
            ok(server, user, "POST", "model-versions/create", new_version(work))
        alias = {"name": model, "alias": "champion", "version": "1"}
        ok(server, admin(server), "POST", "registered-models/alias", alias)
    return work


def stored(server: TeamServer, work: Work) -> dict:
    """What PostgreSQL and the artifact store hold of the work: everything the actions could change."""
    with psycopg.connect(server.database, password=server.database_password) as db:
        one = lambda query, *args: db.execute(query, args).fetchall()
        return {
            "run": one("select status, lifecycle_stage, name, user_id from runs where run_uuid = %s", work.run_id),
            "metrics": one("select key, value from metrics where run_uuid = %s", work.run_id),
            "tags": sorted(one("select key, value from tags where run_uuid = %s", work.run_id)),
            "models": one("select name from registered_models where name like %s", f"{work.model or '-'}%"),
            "versions": one("select name, version from model_versions where name like %s", f"{work.model}%"),
            "aliases": one("select alias, version from registered_model_aliases where name = %s", work.model),
            "files": sorted(p.name for p in (server.folder / "artifacts" / work.experiment / work.run_id).rglob("*")),
        }


def test_a_run_is_its_creators_whatever_the_client_says(team, experiment):
    work = adas_work(team, experiment, "roles-owner")
    (run,) = stored(team, work)["run"]
    assert run[3] == "ada"
    assert ("mlflow.user", "ada") in stored(team, work)["tags"]


@pytest.mark.parametrize("action", list(ACTIONS))
def test_who_may_undo_adas_work(team, experiment, action):
    """The refused try the same work in turn, each leaving it as it was; each allowed one has fresh work."""
    request, allowed = ACTIONS[action]
    model = f"roles-{list(ACTIONS).index(action)}" if request(Work("", ""))[1].startswith(("model", "regis")) else None
    refused = adas_work(team, experiment, model)
    for actor in ("ada", "cy", "bo", "admin"):
        work = adas_work(team, experiment, model and f"{model}-{actor}") if actor in allowed else refused
        before = stored(team, work)
        method, endpoint, body = request(work)
        code, answer = call(team, admin(team) if actor == "admin" else ACTORS[actor], method, endpoint, body)
        after = stored(team, work)
        if actor in allowed:
            assert (actor, code) == (actor, 200), answer
            assert after != before, actor
            continue
        assert (actor, code) == (actor, 403), answer
        assert after == before, actor
        # Refused by MLflow's own permissions (a member deleting an alias: MANAGE), or else by the team's rules.
        who = "only its owner and the admins" if allowed == OWNER else "only the team's maintainers and admins"
        assert answer["message"] == "Permission denied" or (who in answer["message"] and actor in answer["message"])


def test_every_password_passes_the_policy(team):
    refusals = {
        "password1234": "password1234 is the admin password MLflow used to ship, which anyone can guess",
        "short-one": "it has 9 characters, and 12 or more are needed",
    }
    for password, why in refusals.items():
        code, answer = call(team, admin(team), "POST", "users/create", {"username": "eve", "password": password})
        assert (code, answer["message"]) == (400, f"the password for 'eve': {why} — choose another")
        body = {"username": "ada", "password": password, "current_password": ADA[1]}
        code, answer = call(team, ADA, "PATCH", "users/update-password", body)
        assert (code, answer["message"]) == (400, f"the password for 'ada': {why} — choose another")
    assert status(f"{team.url}/api/2.0/mlflow/experiments/search?max_results=1", ADA) == 200  # unchanged
    with pytest.raises(UserError, match="^HWLAB_NEW_PASSWORD: password1234 is the admin password"):
        team_tool.new_password("eve", team.folder, {team_tool.NEW_PASSWORD_ENV: "password1234"})


def test_a_member_is_told_in_one_line_that_crowning_needs_a_maintainer(team, experiment, monkeypatch, capsys):
    work = adas_work(team, experiment, "roles-crowning")
    ok(team, ADA, "POST", "runs/update", {"run_id": work.run_id, "status": "FINISHED"})
    log_in(monkeypatch, team, ADA)
    with pytest.raises(SystemExit) as ended:
        promote_main([work.run_id])
    assert ended.value.code == 1
    refusal = (
        f"{work.model} version 2 not made @champion: only the team's maintainers and admins may move an alias such "
        "as @champion, and ada is neither (the admin names maintainers: `make maintainer NAME=…`); a maintainer "
        f"can, with `python -m pipeline.promote {work.run_id}`"
    )
    assert capsys.readouterr().err.splitlines() == [f"error: {refusal}"]
    crown(MlflowClient(team.url), work.run_id, work.run_id)  # a sweep's end, as ada: it says so and goes on
    assert capsys.readouterr().err.splitlines() == [f"sweep: no champion: {refusal}"]
    assert stored(team, work)["aliases"] == [("champion", 1)]
    mlflow.set_tracking_uri(None)


def test_comparing_anothers_sweep_again_is_refused_in_one_line(team, experiment, monkeypatch, capsys, tmp_path):
    """`python -m pipeline.compare` writes its comparison into the sweep's parent run: a member's into their own,
    not into another's, and the server's refusal is one line, as a user's mistake is (pipeline/core/errors.py)."""
    parent = adas_work(team, experiment)
    child = {"experiment_id": experiment, "tags": [{"key": "mlflow.parentRunId", "value": parent.run_id}]}
    child_id = ok(team, ADA, "POST", "runs/create", child)["run"]["info"]["run_id"]
    ok(team, ADA, "POST", "runs/log-metric", {"run_id": child_id, "key": "test.mnist.accuracy", "value": 0.9})
    for run_id in (child_id, parent.run_id):
        ok(team, ADA, "POST", "runs/update", {"run_id": run_id, "status": "FINISHED"})
    before = stored(team, parent)
    log_in(monkeypatch, team, CY)
    with pytest.raises(SystemExit) as ended:
        compare_main([parent.run_id, "--out", str(tmp_path / "comparison")])
    assert ended.value.code == 1
    refusal = f"run {parent.run_id} is ada's: only its owner and the admins may change it, cy may not"
    assert capsys.readouterr().err.splitlines() == [f"error: the tracking server refused: {refusal}"]
    assert stored(team, parent) == before
    mlflow.set_tracking_uri(None)


def test_running_anothers_sweep_again_is_refused_in_one_line_before_any_job(team, experiment, tmp_path):
    """The same sweep command, run by cy in ada's sweep folder (a disk the team shares): the sweep would reopen ada's
    parent run, which the server refuses; cy is told so in one line, no job starts and ada's run is as it was."""
    overrides = ["tracking.experiment=team-roles", "experiment=fast", *CHEAPEST[1:], "model=plain1,plain3"]
    run = {"experiment_id": experiment, "run_name": parent_name(" ".join(overrides))}
    parent = Work(ok(team, ADA, "POST", "runs/create", run)["run"]["info"]["run_id"], "", experiment)
    ok(team, ADA, "POST", "runs/update", {"run_id": parent.run_id, "status": "FAILED"})
    sweep = tmp_path / "sweep"
    write_json(sweep / SWEEP_FILE, {"parent_run_id": parent.run_id, "varied": ["model"]})
    before = stored(team, parent)
    login = {"MLFLOW_TRACKING_URI": team.url, "MLFLOW_TRACKING_USERNAME": CY[0], "MLFLOW_TRACKING_PASSWORD": CY[1]}
    ran = entrypoint(["-m", "pipeline.experiment", "-m", *overrides, f"hydra.sweep.dir={sweep}"], tmp_path, **login)
    assert ran.returncode == 1, ran.stderr[-3000:]
    refusal = f"run {parent.run_id} is ada's: only its owner and the admins may change it, cy may not"
    told = f"the tracking server refused: {refusal} — {sweep / SWEEP_FILE} is another's sweep"
    assert ran.stderr.splitlines() == [f"error: sweep: {told}: run yours in a folder of its own (hydra.sweep.dir=…)"]
    assert sorted(p.name for p in sweep.iterdir()) == [SWEEP_FILE]  # no job's folder
    assert stored(team, parent) == before


def test_make_member_maintainer_and_remove_user_each_in_one_line(team, monkeypatch):
    """Each target as the admin runs it, through make (the mistakes through pipeline/team.py's functions, here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HWLAB_NEW"))} | followed()
    port = team.url.rsplit(":", 1)[1]
    venv = Path(sys.prefix)

    def make(target: str) -> subprocess.CompletedProcess:
        command = ["make", "-s", "-C", str(REPO), f"VENV={venv}", "-o", f"{venv}/.installed", target, "NAME=dee"]
        command += [f"PORT={port}", f"SERVER_DIR={team.folder}"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    made = make("member")
    path = team.folder / "logins" / "dee"
    assert (made.returncode, made.stderr) == (0, "")  # no warning of MLflow's either
    assert made.stdout.splitlines() == [
        f"dee: a new user, with the password in {path}; dee: a member (runs of their own, new versions of every model)"
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    dee = ("dee", path.read_text().strip())
    assert status(f"{team.url}/api/2.0/mlflow/experiments/search?max_results=1", dee) == 200
    work = adas_work(team, ok(team, dee, "POST", "experiments/create", {"name": "dee's"})["experiment_id"], "roles-dee")
    assert call(team, dee, "DELETE", "registered-models/delete", {"name": work.model})[0] == 403

    promoted = make("maintainer")  # the member, now a maintainer, with the same password
    assert (promoted.returncode, promoted.stderr) == (0, "")
    assert promoted.stdout.splitlines() == [
        "dee: a maintainer (moves @champion, renames and deletes models and experiments)"
    ]
    assert call(team, dee, "DELETE", "registered-models/delete", {"name": work.model})[0] == 200

    demoted = make("member")  # a member again, with the same password
    assert (demoted.returncode, demoted.stderr) == (0, "")
    assert demoted.stdout.splitlines() == [
        "dee: a member again, no longer a maintainer (runs of their own, new versions of every model)"
    ]
    work = adas_work(team, work.experiment, "roles-dee-again")
    assert call(team, dee, "DELETE", "registered-models/delete", {"name": work.model})[0] == 403
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team.admin_password)
    admin_client = get_app_client("basic-auth", tracking_uri=team.url)
    already = "dee: already a member of the server — `make maintainer NAME=dee` makes them a maintainer, `make rem"
    with pytest.raises(UserError, match=f"^{re.escape(already)}"):
        team_tool.add(admin_client, "dee", team.folder, maintainer=False)

    # Removed, a maintainer again first (the role's assignment must not block it): the login and its file go, the
    # run stays, dee's by name, and only the admins may change it.
    team_tool.add(admin_client, "dee", team.folder, maintainer=True)
    deed = ok(team, dee, "POST", "runs/create", {"experiment_id": work.experiment})["run"]["info"]["run_id"]
    removed = make("remove-user")
    assert (removed.returncode, removed.stderr) == (0, "")
    assert removed.stdout.splitlines() == [
        "dee: removed; their runs stay, theirs by name, and only the admins may change them now"
    ]
    assert not path.exists()
    # Refused at once by every worker of the server: by the one that removed dee for the login (401), and by one
    # that still trusts it (its login cache) as a user it cannot find (404).
    for method, endpoint, body in [
        ("GET", "experiments/search?max_results=1", b""),
        ("POST", "runs/create", {"experiment_id": work.experiment}),
        ("POST", "runs/update", {"run_id": deed, "status": "FAILED"}),
    ]:
        for _ in range(4):  # whichever worker answers
            assert call(team, dee, method, endpoint, body)[0] in {401, 404}, endpoint
    ((state, stage, _, user),) = stored(team, Work(deed, ""))["run"]
    assert (state, stage, user) == ("RUNNING", "active", "dee")
    assert call(team, ADA, "POST", "runs/update", {"run_id": deed, "status": "KILLED"})[0] == 403
    ok(team, admin(team), "POST", "runs/update", {"run_id": deed, "status": "KILLED"})
    with pytest.raises(UserError, match="^dee: no such user on the server — nothing to remove$"):
        team_tool.remove(admin_client, "dee", team.folder)
    with pytest.raises(UserError, match="^admin: the server's admin cannot be removed"):
        team_tool.remove(admin_client, "admin", team.folder)
