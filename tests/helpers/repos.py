"""The repository under test: where it is, a fresh copy of it as a clone would have it, commands run in a copy with
a user's environment, and a copy after the fast `dvc repro`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.paths import ROOT
from pipeline.core.tensorflow_startup import LEVEL as TF_LEVEL
from pipeline.data.mirror import ENV_VAR
from tests.helpers.servers import TrackingServer

REPO = ROOT  # the repository under test, where the pipeline finds itself


def stage_env(mirror: Path | None) -> dict[str, str]:
    """The environment a user's shell would give `dvc repro`: our Python first on PATH, the mirror (or none, as on
    a user's machine), no MLflow server."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", ENV_VAR)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if mirror is not None:
        env[ENV_VAR] = str(mirror)
    env.pop(TF_LEVEL, None)  # the pipeline's own default, as a user's shell has it
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.com")
    return env


def copy_repo(dest: Path) -> Path:
    """The files a fresh clone would have (tracked plus new, not ignored), as a new git repository."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


@dataclass(frozen=True)
class FastRepo:
    path: Path  # a new repository after `dvc repro` with the fast setting
    env: dict[str, str]
    compose: list[str]  # the overrides its params.yaml was composed with
    first_repro: str  # what that `dvc repro` printed
    run_id: str  # its MLflow run
    models: Path  # a copy of its models/ folder, safe from later tests' changes


@dataclass(frozen=True)
class ServedRepo:
    path: Path  # a new repository after `dvc repro` with the fast setting against the tracking server, committed
    env: dict[str, str]  # with MLFLOW_TRACKING_URI the server's URL
    server: TrackingServer
    run_id: str


def entrypoint(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python <args>` as a user runs a stage by hand, from `cwd`, with this repository importable."""
    environ = {k: v for k, v in stage_env(None).items() if k != "HYDRA_FULL_ERROR"}
    environ.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True, check=False)
