"""Shared fixtures: tiny IDX files the tests write themselves, and the real data mirror for end-to-end tests."""

from __future__ import annotations

import gc
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from pipeline.core.cpu import bfloat16_capped
from pipeline.core.errors import USER_ERROR
from pipeline.core.paths import ROOT
from pipeline.data.datasets import DIGIT_NAMES, Dataset, save_dataset
from pipeline.data.mirror import ENV_VAR
from tests.http_source import FileServer, nist_archive

REPO = ROOT  # the repository under test, where the pipeline finds itself


# Forcing bfloat16 is what these test; under an ISA cap that forbids its instructions (the AVX2 stand-in of
# bench/RESULTS.md) oneDNN has no bfloat16 convolution to run, which a real CPU without them does have.
needs_bfloat16_kernels = pytest.mark.skipif(bfloat16_capped(), reason="ONEDNN_MAX_CPU_ISA forbids bfloat16 kernels")


def conf(group: str, name: str) -> dict:
    """One option file of a config group (conf/<group>/<name>.yaml), the single source of truth, as a dict."""
    return yaml.safe_load((REPO / "conf" / group / f"{name}.yaml").read_text())


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file for a uint8 array (magic from its number of dimensions unless given)."""
    magic = magic if magic is not None else 0x0800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True, magic: int | None = None) -> Path:
    data = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def pytest_unconfigure(config: pytest.Config) -> None:
    """As the stage processes do (pipeline/core/shutdown.py): skip the interpreter's last collection over everything
    TensorFlow, Keras and MLflow left alive, seconds at the end of every test run."""
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the real data mirror (the end-to-end runs of the pipeline) is `slow`:
    `make test-fast` (`pytest -m "not slow"`) leaves them out."""
    for item in items:
        if "mirror" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real datasets (../shared/data here); CI must have them, elsewhere the test is skipped with a reason."""
    value = os.environ.get(ENV_VAR)
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{ENV_VAR} is not set: CI must run the end-to-end tests on the real data mirror")
        pytest.skip(f"needs the real data: set {ENV_VAR} to a folder with mnist/ and emnist/ (see docs/data.md)")
    return Path(value).resolve()


def stage_env(mirror: Path | None) -> dict[str, str]:
    """The environment a user's shell would give `dvc repro`: our Python first on PATH, the mirror (or none, as on
    a user's machine), no MLflow server."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", ENV_VAR)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if mirror is not None:
        env[ENV_VAR] = str(mirror)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
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


@pytest.fixture
def user_error(monkeypatch, capsys) -> Callable[[Callable[[], object]], tuple[str, str]]:
    """Calls an entrypoint's `main` in process and checks that it ended as a user's mistake ends every stage and
    tool (pipeline/core/errors.py): exit status 1, the message after `error: ` on stderr; gives what it printed
    (stdout, stderr)."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)  # which shows the traceback instead

    def ended(call: Callable[[], object]) -> tuple[str, str]:
        with pytest.raises(SystemExit) as exit_:
            call()
        assert exit_.value.code == USER_ERROR
        captured = capsys.readouterr()
        assert "\nerror: " in "\n" + captured.err, captured.err
        return captured.out, captured.err

    return ended


@pytest.fixture(scope="session")
def official_site(mirror, tmp_path_factory) -> tuple[Path, str]:
    """A folder to serve as the official sources: mnist/ (MNIST's four files, as LeCun's mirrors serve them) and
    EMNIST/gzip.zip (an archive laid out like NIST's, built from the mirror's EMNIST files); and the archive's MD5."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(mirror / "mnist", root / "mnist")
    return root, nist_archive(mirror / "emnist", root / "EMNIST" / "gzip.zip")


@dataclass(frozen=True)
class FastRepo:
    path: Path  # a new repository after `dvc repro` with the fast setting
    env: dict[str, str]
    compose: list[str]  # the overrides its params.yaml was composed with
    first_repro: str  # what that `dvc repro` printed
    run_id: str  # its MLflow run
    models: Path  # a copy of its models/ folder, safe from later tests' changes


@pytest.fixture(scope="session")
def fast_repo(official_site, tmp_path_factory) -> FastRepo:
    """The real pipeline, once per session, as on a user's machine: a fresh copy of the repository, no mirror, the
    data downloaded from a loopback server standing in for the official sites, `dvc repro` with experiment=fast."""
    path = copy_repo(tmp_path_factory.mktemp("clone"))
    env = stage_env(None)
    run(["git", "init", "-q"], path, env)
    run(["git", "add", "-A"], path, env)
    run(["git", "commit", "-q", "-m", "clone"], path, env)
    root, md5 = official_site
    with FileServer(root) as server:
        compose = [
            "experiment=fast",
            f"fetch.mnist.sources=[{server.url('mnist/')}]",
            f"fetch.emnist.archives=[{server.url('EMNIST/gzip.zip')}]",
            f"fetch.emnist.md5={md5}",
        ]
        run(["python", "-m", "pipeline.compose", *compose], path, env)
        first = run(["dvc", "repro"], path, env)
    models = tmp_path_factory.mktemp("models")
    shutil.copytree(path / "models", models, dirs_exist_ok=True)
    run_id = json.loads((path / "models" / "run.json").read_text())["run_id"]
    return FastRepo(path, env, compose, first.stdout, run_id, models)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, what: str, seconds: float = 180) -> None:
    """Until `url` answers; fails with `what`'s output if the process ends first or the time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what} did not start") from None
            time.sleep(0.5)


@dataclass(frozen=True)
class TrackingServer:
    url: str
    folder: Path  # its SQLite store and the artifacts clients uploaded


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


@dataclass(frozen=True)
class ServedRepo:
    path: Path  # a new repository after `dvc repro` with the fast setting against the tracking server, committed
    env: dict[str, str]  # with MLFLOW_TRACKING_URI the server's URL
    server: TrackingServer
    run_id: str


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


# Tiny synthetic data for in-process tests of the stages: no mirror, seconds per test.


def synthetic_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """28x28 uint8 images a small network can tell apart: class c is a bright bar at a position of its own,
    on faint noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        row = 3 + 2 * (int(c) % 12)
        x[i, row : row + 2, 4:24] = 255
    return x


def synthetic_dataset(num_classes: int, n_train: int, n_test: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    y_train = (np.arange(n_train) % num_classes).astype(np.uint8)
    y_test = rng.integers(0, num_classes, n_test).astype(np.uint8)
    names = DIGIT_NAMES if num_classes == 10 else tuple(f"c{i}" for i in range(num_classes))
    return Dataset(
        x_train=synthetic_images(rng.permutation(y_train), seed),
        y_train=rng.permutation(y_train),
        x_test=synthetic_images(y_test, seed + 1),
        y_test=y_test,
        class_names=names,
        source=f"synthetic, {num_classes} classes",
    )


def tiny_config(overrides: list[str] = ()) -> DictConfig:
    """conf/ composed through Hydra as the stages see it, with the fast setting shrunk to seconds."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "experiment=fast",
                "data.train_limit=null",
                "evaluate.limit=null",
                "train.batch_size=32",
                "report.max_misclassified=12",
                "report.grid_size=8",
                *overrides,
            ],
        )


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables made: creating them takes MLflow ~4 s, copying the file nothing."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    SqlAlchemyStore(f"sqlite:///{path}", str(path.parent / "artifacts")).engine.dispose()
    return path


@contextmanager
def tiny_workdir(folder: Path, mp: pytest.MonkeyPatch, store: Path) -> Iterator[DictConfig]:
    """`folder` as a project after fetch and ingest: the prepared datasets (MNIST-shaped, 300 training and 100 test
    images; EMNIST digits, 100 test images), an empty embedded store, and the current directory, so that the
    configured relative paths and the store land in it. Yields the composed fast config."""
    import mlflow  # here, not on top: the first process of `pytest -n` loads this file and never needs MLflow

    mp.chdir(folder)
    # MLflow's own too: mlflow.set_experiment() exports MLFLOW_EXPERIMENT_ID, which a later test's subprocess
    # would inherit (cleared below; monkeypatch then restores any value the variables had before).
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", "DVC_ROOT", "DVC_EXP_NAME", ENV_VAR):
        mp.delenv(var, raising=False)
    save_dataset(folder / "data" / "prepared" / "mnist.npz", synthetic_dataset(10, 300, 100, seed=1))
    save_dataset(folder / "data" / "prepared" / "emnist_digits.npz", synthetic_dataset(10, 0, 100, seed=2))
    (folder / "mlruns").mkdir()
    shutil.copy(store, folder / "mlruns" / "mlflow.db")
    try:
        yield tiny_config()
    finally:
        for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
            os.environ.pop(var, None)
        mlflow.set_tracking_uri(None)  # back to MLflow's default, as the next test expects
        mlflow.tracking.fluent._active_experiment_id = None


@pytest.fixture
def tiny(tmp_path, monkeypatch, empty_store) -> Iterator[DictConfig]:
    """A fresh tiny project for one test (see `tiny_workdir`)."""
    with tiny_workdir(tmp_path, monkeypatch, empty_store) as cfg:
        yield cfg
