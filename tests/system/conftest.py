"""The system tests' own fixtures: a team's tracking server, once per session, and the fast pipeline run against it;
a single-node SLURM cluster, once per session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.repos import REPO, ServedRepo, copy_repo, run, stage_env
from tests.helpers.servers import TrackingServer, free_port, wait_for_http
from tests.helpers.slurm import SlurmCluster, missing_reason, slurm_cluster


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory) -> Iterator[TrackingServer]:
    """`make server` as documented, on a free loopback port, its store in a temporary folder; once per session."""
    folder = tmp_path_factory.mktemp("tracking_server")
    port = free_port()
    venv = Path(sys.prefix)  # the environment running the tests; `-o` keeps make from rebuilding it
    log = open(folder / "server.log", "w")  # noqa: SIM115 (open while the server runs)
    server = subprocess.Popen(
        ["make", "-s", "-C", str(REPO), f"VENV={venv}", "-o", f"{venv}/.installed", "server"]
        + ["HOST=127.0.0.1", f"PORT={port}", f"SERVER_DIR={folder}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, the mlflow CLI and its uvicorn workers: one group to stop at the end
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", server, f"mlflow server ({folder / 'server.log'})")
        yield TrackingServer(url, folder)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="session")
def served_repo(tracking_server, mirror, tmp_path_factory) -> ServedRepo:
    """The fast pipeline once against the tracking server, with MLFLOW_TRACKING_URI the only MLflow setting: a fresh
    copy of the repository, the data from the mirror, `dvc repro`, and a commit of what it wrote."""
    path = copy_repo(tmp_path_factory.mktemp("served"))
    env = {**stage_env(mirror), "MLFLOW_TRACKING_URI": tracking_server.url}
    run(["git", "init", "-q"], path, env)
    run(["python", "-m", "pipeline.compose", "experiment=fast"], path, env)
    run(["dvc", "repro"], path, env)
    run(["git", "add", "-A"], path, env)
    run(["git", "commit", "-q", "-m", "fast run, tracked on the server"], path, env)
    run_id = json.loads((path / "models" / "run.json").read_text())["run_id"]
    return ServedRepo(path, env, tracking_server, run_id)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> Iterator[SlurmCluster]:
    """A single-node SLURM cluster on this machine (tests/helpers/slurm.py), once per session. Without Debian's
    slurm-wlm and munge the tests that need it are skipped (CI installs them: .ci/run), with the reason."""
    reason = missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM tests: {reason}")
        pytest.skip(reason)
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
