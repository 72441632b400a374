"""When the far end is missing: a tracking server or DVC remote that does not answer is one line naming it and what
to check, within seconds and before any training; one that answers at all passes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from dvc.repo import Repo
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from PIL import Image

from pipeline import predict
from pipeline.core.errors import UserError
from pipeline.sweeps.callback import SweepTracking
from pipeline.tracking import reach, store
from pipeline.train import train
from tests.helpers.repos import REPO, copy_repo, entrypoint, run, stage_env
from tests.helpers.servers import FileServer, free_port


@pytest.fixture
def refused() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback URL that accepts connections and never answers (a hung server, a black-holing firewall)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_nothing_listening_is_a_refused_connection(refused):
    assert reach.http_problem(refused) == "Connection refused"


def test_a_server_that_never_answers_is_given_up_on_in_time(silent):
    start = time.monotonic()
    assert reach.http_problem(silent, timeout=0.5) == "no answer within 0.5 s"
    assert time.monotonic() - start < 3


def test_any_http_answer_counts_even_an_error_status(tmp_path):
    with FileServer(tmp_path) as server:  # 404 for every path here
        assert reach.http_problem(server.url("health")) is None


def test_a_question_that_fails_or_hangs_is_the_problem():
    assert reach.answered_within(lambda: None) is None
    assert reach.answered_within(lambda: 1 / 0) == "ZeroDivisionError: division by zero"
    assert reach.answered_within(lambda: time.sleep(5), timeout=0.2) == "no answer within 0.2 s"


# The tracking server, in every entrypoint that talks to MLflow, before any work.


@pytest.fixture
def absent_server(refused, monkeypatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", refused)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    return refused


def expected_line(uri: str) -> str:
    return (
        f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) not reachable: Connection refused — is it running "
        "(`make server` starts one) and are the address and port right?"
    )


def test_an_absent_server_is_one_problem_naming_it(absent_server):
    assert store.server_problems({"uri": "sqlite:///mlruns/mlflow.db"}) == [expected_line(absent_server)]


def test_a_configured_server_is_named_as_configured(refused, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (problem,) = store.server_problems({"uri": refused})
    assert problem.startswith(f"MLflow tracking server {refused} (tracking.uri) not reachable")


def test_the_embedded_store_is_not_asked(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store.server_problems({"uri": "sqlite:///mlruns/mlflow.db"}) == []


def test_training_stops_before_it_starts(tiny, absent_server):
    start = time.monotonic()
    with pytest.raises(UserError, match="not reachable: Connection refused"):
        train(tiny, "never trained")
    assert time.monotonic() - start < 5
    assert not Path("models").exists() and not Path("checkpoints").exists()


def test_a_sweep_is_refused_before_its_parent_run(absent_server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.overrides.task = ["model=plain1,plain3"]
            cfg.hydra.sweep.dir = str(tmp_path / "sweep")
        with pytest.raises(SystemExit) as exit_:
            SweepTracking().on_multirun_start(cfg)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {expected_line(absent_server)}\n"
    assert os.listdir(tmp_path) == []


def test_predict_with_a_model_on_an_absent_server_is_one_line(absent_server, tmp_path, user_error):
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(tmp_path / "a.png")
    _, err = user_error(lambda: predict.main([str(tmp_path / "a.png"), "--model", "runs:/0123456789abcdef/model"]))
    assert err == f"error: runs:/0123456789abcdef/model: {expected_line(absent_server)}\n"


@pytest.mark.slow  # a real entrypoint process
def test_a_sweep_with_an_absent_server_exits_in_one_line_before_any_job(refused, tmp_path):
    """Hydra turns a callback's exception into a warning and goes on; the sweep must stop, not start its jobs."""
    result = entrypoint(
        ["-m", "pipeline.experiment", "-m", "model=plain1,plain3", "hydra.sweep.dir=sweep"],
        tmp_path,
        MLFLOW_TRACKING_URI=refused,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {expected_line(refused)}"]
    assert os.listdir(tmp_path) == []  # no sweep folder, no job, no store


# The DVC remote: `python -m pipeline.reach`, which `make push` and `make pull` run first.


def dvc_repo(folder: Path, remote_url: str | None) -> Path:
    """A new DVC project (no git) with `remote_url` as its default remote, written as `dvc remote add -d` does."""
    Repo.init(str(folder), no_scm=True).close()
    if remote_url is not None:
        remote = f"    remote = storage\n['remote \"storage\"']\n    url = {remote_url}\n"
        (folder / ".dvc" / "config").write_text("[core]\n    no_scm = True\n" + remote)
    return folder


def test_a_local_remote_is_there_when_it_or_its_parent_folder_is(tmp_path):
    (tmp_path / "share").mkdir()
    assert reach.remote_problem(dvc_repo(tmp_path / "a", str(tmp_path / "share" / "remote"))) is None
    # As .dvc/config has it: relative to .dvc/, a folder beside the repository, made by the first push.
    assert reach.remote_problem(dvc_repo(tmp_path / "b", "../../beside")) is None


def test_a_local_remote_on_a_missing_drive_is_refused(tmp_path):
    remote = tmp_path / "unmounted" / "dvc-remote"
    assert reach.remote_problem(dvc_repo(tmp_path / "a", str(remote))) == (
        f"DVC remote 'storage' ({remote}): neither it nor its parent folder exists — is the drive or share mounted? "
        "Or point it elsewhere with `dvc remote modify --local storage url <url>`"
    )


def test_an_http_remote_that_refuses_is_refused_in_time(tmp_path, refused):
    start = time.monotonic()
    problem = reach.remote_problem(dvc_repo(tmp_path, f"{refused}/dvc"), timeout=1)
    assert problem.startswith(f"DVC remote 'storage' ({refused}/dvc) not reachable: Connection refused — check the")
    assert time.monotonic() - start < 5


def test_a_remote_whose_dvc_plugin_is_missing_says_which_to_install(tmp_path):
    problem = reach.remote_problem(dvc_repo(tmp_path, "s3://bucket/dvc"))
    assert problem == "DVC remote 'storage' (s3://bucket/dvc): s3 is supported, but requires 'dvc-s3' to be installed"


def test_no_remote_at_all_says_how_to_add_one(tmp_path):
    assert reach.remote_problem(dvc_repo(tmp_path, None)).startswith("no default DVC remote: add one with")


def test_outside_a_dvc_repository_says_where_to_run_it(tmp_path):
    assert reach.remote_problem(tmp_path) == (
        f"{tmp_path} is not in a DVC repository: run this from the project's folder"
    )


@pytest.mark.slow  # make and DVC in processes of their own
@pytest.mark.parametrize("remote", ["local", "http"])
def test_make_push_to_a_missing_remote_fails_in_seconds_before_any_training(remote, tmp_path, refused):
    """A repository with nothing trained yet: `make push` would train first, so the remote is asked before."""
    path = copy_repo(tmp_path / "repo")
    env = stage_env(None)
    run(["git", "init", "-q"], path, env)
    url = str(tmp_path / "unmounted" / "dvc-remote") if remote == "local" else f"{refused}/dvc"
    run(["dvc", "remote", "modify", "--local", "storage", "url", url], path, env)
    venv = Path(sys.prefix)
    start = time.monotonic()
    result = subprocess.run(
        ["make", "-s", f"VENV={venv}", "-o", f"{venv}/.installed", "push"],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and time.monotonic() - start < 30
    assert result.stderr.splitlines()[0].startswith(f"error: DVC remote 'storage' ({url})")
    assert "Running stage" not in result.stdout
    assert not (path / "data").exists() and not (path / "models").exists()
