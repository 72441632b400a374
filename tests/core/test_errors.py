"""A user's mistake ends a stage or a tool with one line on stderr and exit status 1; a bug keeps its traceback."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from dvc.repo import Repo
from mlflow.exceptions import RestException
from PIL import Image

from pipeline.core.errors import UserError, failure_report, reports_user_errors
from pipeline.data.checksums import ChecksumError
from pipeline.data.datasets import DatasetError
from pipeline.data.download import SourcesExhausted
from pipeline.data.idx import IdxError
from pipeline.modeling.model_file import ModelFileError
from pipeline.tracking import store
from pipeline.tracking.registry import RegistryError
from tests.helpers.configs import tiny_config
from tests.helpers.repos import REPO, entrypoint

HYDRA_RUN = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=stdout"]


@pytest.mark.parametrize("error", [IdxError, ChecksumError, SourcesExhausted, DatasetError])
def test_the_errors_our_code_raises_about_data_are_user_errors(error):
    assert issubclass(error, UserError)


@pytest.mark.parametrize("error", [ModelFileError, RegistryError])
def test_a_model_or_run_that_cannot_be_used_is_a_user_error(error):
    assert issubclass(error, UserError)


def test_they_are_still_what_the_download_loop_and_callers_catch():
    assert issubclass(IdxError, ValueError) and issubclass(ChecksumError, ValueError)
    assert issubclass(DatasetError, ValueError) and issubclass(SourcesExhausted, RuntimeError)


@pytest.fixture
def no_full_error(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


@pytest.mark.usefixtures("no_full_error")
@pytest.mark.parametrize(
    "error",
    [
        IdxError("t10k-images-idx3-ubyte: expected magic 2051, found 2049 — is this a labels file?"),
        FileNotFoundError("data/prepared/mnist.npz: prepared dataset not found — run `dvc repro` first"),
    ],
)
def test_a_user_error_is_one_line_on_stderr_and_exit_status_1(error, capsys):
    @reports_user_errors
    def main(cfg):
        raise error

    with pytest.raises(SystemExit) as exit_:
        main({})
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {error}\n" and captured.out == ""


@pytest.mark.usefixtures("no_full_error")
def test_a_tracking_servers_refusal_is_one_line_on_stderr_and_exit_status_1(capsys):
    """A 403 of the team's server (tests/system/test_team_server.py has a real one) says whose the run is."""
    refusal = {"error_code": "PERMISSION_DENIED", "message": "run 0a1b is ada's: only its owner and the admins may"}

    @reports_user_errors
    def main():
        raise RestException(refusal)

    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: the tracking server refused: {refusal['message']}\n"
    assert failure_report(RestException(refusal)) == f" the tracking server refused: {refusal['message']}"
    upload = requests.Response()  # an artifact upload's 403 (MLflow's artifact client raises requests' error)
    upload.status_code, upload._content = 403, json.dumps(refusal).encode()
    assert failure_report(requests.HTTPError("403 Client Error", response=upload)) == failure_report(
        RestException(refusal)
    )


@pytest.mark.usefixtures("no_full_error")
def test_another_error_of_the_tracking_server_is_a_bug_with_its_traceback():
    @reports_user_errors
    def main():
        raise RestException({"error_code": "INTERNAL_ERROR", "message": "database is locked"})

    with pytest.raises(RestException, match="database is locked"):
        main()


def test_a_message_that_quotes_a_name_with_a_newline_or_an_escape_is_still_one_line(user_error):
    @reports_user_errors
    def main():
        raise UserError("run 'x\n': no such run; 'a\x1b[2Jb.png' and 'caf\u00e9 \udcff.png' ≥ 1")

    _, err = user_error(main)
    assert err == "error: run 'x\\n': no such run; 'a\\x1b[2Jb.png' and 'café \\udcff.png' ≥ 1\n"


def test_hydra_full_error_shows_the_user_errors_traceback(monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")

    @reports_user_errors
    def main(cfg):
        raise IdxError("bad file")

    with pytest.raises(IdxError, match="bad file"):
        main({})


@pytest.mark.usefixtures("no_full_error")
def test_a_bug_passes_through_unchanged():
    @reports_user_errors
    def main(cfg):
        raise KeyError("history")

    with pytest.raises(KeyError, match="history"):
        main({})


def test_a_return_value_passes_through():
    assert reports_user_errors(lambda cfg: cfg["accuracy"])({"accuracy": 0.99}) == 0.99


@pytest.mark.usefixtures("no_full_error")
def test_the_run_of_a_stage_that_failed_on_a_user_error_is_failed(tiny):
    """The message is printed outside the stage's run: the run has already ended FAILED."""

    @reports_user_errors
    def main(cfg):
        store.connect(cfg.tracking)
        with mlflow.start_run(run_name="missing data"):
            raise FileNotFoundError("data/prepared/mnist.npz: prepared dataset not found")

    with pytest.raises(SystemExit):
        main(tiny)
    (run,) = mlflow.search_runs(filter_string="attributes.run_name = 'missing data'", output_format="list")
    assert run.info.status == "FAILED"


# Every stage and tool, in process: a user's mistake ends each the same way.

ENTRYPOINTS = sorted(p.stem for p in (REPO / "pipeline").glob("*.py") if p.stem != "__init__")
STAGES = {"fetch", "ingest", "train", "evaluate", "label_issues", "report", "experiment", "kfold", "tune"}  # Hydra's


def a_mistake(name: str, folder: Path) -> tuple[Callable[[], object], str]:
    """A call of `python -m pipeline.<name>`'s main, run from the empty `folder`, with a mistake a user makes there,
    and the start of the message it must end with."""
    main = importlib.import_module(f"pipeline.{name}").main
    if name in STAGES:
        return lambda: main(tiny_config(["train.epochs=0"])), "train.epochs=0: must be an integer ≥ 1"
    no_store = f"{folder}/mlruns/mlflow.db: no MLflow store — run this in the project's folder"
    image = folder.parent / "digit.png"
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(image)
    calls = {
        "compare": (lambda: main(["0123456789abcdef"]), no_store),
        "ensemble": (lambda: main(["0123456789abcdef", "--out", "averaged"]), no_store),
        "promote": (lambda: main(["0123456789abcdef"]), no_store),
        "predict": (lambda: main([str(image), "--model", "none.keras"]), "none.keras: no model file"),
        "reach": (main, "no default DVC remote: add one with `dvc remote add -d <name> <url>`"),
        "compose": (lambda: main(["train.epochz=3"]), "Could not override 'train.epochz'."),
        "kfold_join": (lambda: main(["multirun/nowhere"]), "multirun/nowhere: no such folder"),
        "team": (  # the admin adds a member with no server on that port (port 1: nothing listens there)
            lambda: main(["add", "ada", "--server", "http://127.0.0.1:1", "--folder", str(folder / "server")]),
            "http://127.0.0.1:1: Connection refused — is `make server LOGINS=yes` running there (HOST, PORT)?",
        ),
        "server": (
            lambda: main(["--folder", str(folder / "server"), "--store", "sqlite:///x.db", "--logins", "yes"]),
            f"{folder / 'server' / 'admin-password'}: readable by others (mode 0644)",
        ),
    }
    if name == "reach":
        Repo.init(str(folder), no_scm=True).close()  # a DVC project without a remote
    if name == "server":  # the admin's password left where others can read it
        (folder / "server").mkdir()
        (folder / "server" / "admin-password").write_text("a-long-enough-password\n")
        (folder / "server" / "admin-password").chmod(0o644)
    assert name in calls, f"pipeline/{name}.py: give it a mistake here, to show it ends as every entrypoint does"
    return calls[name]


@pytest.mark.parametrize("name", ENTRYPOINTS)
def test_every_stage_and_tool_ends_on_a_users_mistake_the_same_way(name, tmp_path, monkeypatch, user_error):
    """`error: <message>` on stderr, nothing on stdout, exit status 1 (pipeline/core/errors.py), and nothing
    written: no output, no MLflow store, params.yaml as it was."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    call, message = a_mistake(name, folder)
    before, params = os.listdir(folder), (REPO / "params.yaml").read_bytes()
    out, err = user_error(call)
    assert out == "" and err.startswith(f"error: {message}"), err
    assert "Traceback" not in err
    assert os.listdir(folder) == before and (REPO / "params.yaml").read_bytes() == params


# The real entrypoints, in processes of their own.


@pytest.mark.slow  # a real entrypoint process
def test_a_missing_data_file_ends_the_stage_in_one_line(tmp_path):
    result = entrypoint(["-m", "pipeline.ingest", *HYDRA_RUN], tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line == (
        "error: data/raw/mnist/train-images-idx3-ubyte: not found — run the fetch stage first (`dvc repro fetch`), "
        "or put NIST's files into data/raw/mnist"
    )
    assert os.listdir(tmp_path) == []


@pytest.mark.slow  # a real entrypoint process
def test_with_hydra_full_error_the_traceback_is_there(tmp_path):
    result = entrypoint(["-m", "pipeline.ingest", *HYDRA_RUN], tmp_path, HYDRA_FULL_ERROR="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "FileNotFoundError: data/raw/mnist/" in result.stderr


@pytest.mark.slow  # a real entrypoint process
def test_a_bug_in_an_entrypoint_still_shows_its_traceback(tmp_path):
    """Hydra's own handling of an exception it does not know, through the same decorator the stages use."""
    (tmp_path / "app.py").write_text(
        "import hydra\n"
        "from pipeline.core.errors import reports_user_errors\n\n"
        "@hydra.main(version_base='1.3', config_path=None)\n"
        "@reports_user_errors\n"
        "def main(cfg):\n"
        "    return {}['history']\n\n"
        "main()\n"
    )
    result = entrypoint(["app.py", *HYDRA_RUN], tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "KeyError: 'history'" in result.stderr


@pytest.mark.slow  # a real entrypoint process
def test_a_bad_setting_stops_training_in_one_line_before_any_work(tmp_path):
    result = entrypoint(["-m", "pipeline.train", "train.epochs=0", *HYDRA_RUN], tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: train.epochs=0: must be an integer ≥ 1"]
    assert os.listdir(tmp_path) == []  # no MLflow store, no outputs


@pytest.mark.slow  # a real entrypoint process
def test_a_bad_setting_with_hydra_full_error_shows_the_traceback(tmp_path):
    result = entrypoint(["-m", "pipeline.train", "train.epochs=0", *HYDRA_RUN], tmp_path, HYDRA_FULL_ERROR="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "pipeline.config.schema.ConfigError: train.epochs=0: must be an integer ≥ 1" in result.stderr


@pytest.mark.slow  # a real entrypoint process
def test_an_unknown_setting_is_hydras_short_message_without_a_traceback(tmp_path):
    """Hydra refuses it while composing, before our code runs, in a few lines that say what to do."""
    result = entrypoint(["-m", "pipeline.fetch", "train.epochz=3", *HYDRA_RUN], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Could not override 'train.epochz'.\nTo append to your config use +train.epochz=3")
    assert os.listdir(tmp_path) == []


def test_a_sweep_reports_a_failed_jobs_user_error_by_its_message_and_a_bug_by_its_traceback():
    assert failure_report(DatasetError("data/prepared/mnist.npz: run ingest again")) == (
        " data/prepared/mnist.npz: run ingest again"
    )
    try:
        {}["missing"]
    except KeyError as bug:
        report = failure_report(bug)
    assert report.startswith("\nTraceback (most recent call last):") and report.rstrip().endswith("KeyError: 'missing'")
