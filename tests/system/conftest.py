"""The system tests' own fixtures, once per session: a tracking server and the fast pipeline run against it; a
team's server (PostgreSQL, logins); a single-node SLURM cluster."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.helpers import postgres
from tests.helpers.marks import unavailable
from tests.helpers.repos import REPO, ServedRepo, copy_repo, run, stage_env
from tests.helpers.servers import TeamServer, TrackingServer, make_server
from tests.helpers.slurm import SlurmCluster, needs, slurm_cluster


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory) -> Iterator[TrackingServer]:
    """`make server` as documented, on a free loopback port, its store in a temporary folder; once per session."""
    folder = tmp_path_factory.mktemp("tracking_server")
    with make_server(REPO, folder, []) as url:
        yield TrackingServer(url, folder)


@pytest.fixture(scope="session")
def team_server(tmp_path_factory) -> Iterator[TeamServer]:
    """`make server` as a team runs it (docs/scaling.md): its database a real PostgreSQL of its own on a loopback
    port, its password in PGPASSWORD, logins on, the admin's password made by the server on its first start."""
    bin_dir = postgres.binaries()
    if bin_dir is None:
        reason = "needs PostgreSQL's initdb and pg_ctl: `apt-get install postgresql` (.ci/run does, as root)"
        unavailable(reason, "test the team's tracking server")
    folder = tmp_path_factory.mktemp("team_server")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PG"))}
    with postgres.postgres(bin_dir) as db:
        settings = [f"DB={db.uri}", "LOGINS=yes"]
        with make_server(REPO, folder, settings, {**env, "PGPASSWORD": db.password}) as url:
            password = (folder / "admin-password").read_text().strip()
            yield TeamServer(url, folder, db.uri, db.password, password)


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
    needs()
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
