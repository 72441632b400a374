"""Shared fixtures: the real data mirror for end-to-end tests and what is made from it once per session, a tiny
project on synthetic data for in-process tests; the rule that marks the tests needing the mirror `slow`; and how
`pytest -n` shares the test files among its processes. What they build with is in tests/helpers/."""

from __future__ import annotations

import gc
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig
from xdist.plugin import pytest_xdist_auto_num_workers as xdist_count
from xdist.scheduler import LoadFileScheduling

from pipeline.core.errors import USER_ERROR
from pipeline.data.mirror import ENV_VAR
from tests.helpers.marks import unavailable
from tests.helpers.repos import FastRepo, copy_repo, run, stage_env
from tests.helpers.servers import FileServer, nist_archive
from tests.helpers.synthetic import tiny_workdir


def pytest_unconfigure(config: pytest.Config) -> None:
    """As the stage processes do (pipeline/core/shutdown.py): skip the interpreter's last collection over everything
    TensorFlow, Keras and MLflow left alive, seconds at the end of every test run."""
    gc.freeze()


# Test files that share a session fixture too costly to make twice in a run (a SLURM cluster, a team's PostgreSQL
# server, the fast pipeline run by `dvc repro`): under `pytest -n … --dist loadfile` (`make test`) each group runs on
# one worker, as one file would, and the fixture is made once. Collection stops when files that share one of
# SHARED_FIXTURES are not in one group here. Listed longest first: see `run_order`.
TOGETHER = {
    "slurm, team_server": ("tests/system/test_slurm.py", "tests/system/test_team_server.py"),
    "fast_repo": ("tests/system/test_e2e.py", "tests/test_predict.py"),
    "served_repo": ("tests/system/test_tracking_server.py", "tests/system/test_remote.py"),
}
SHARED_FIXTURES = ("slurm", "team_server", "fast_repo", "served_repo")
GROUP_OF = {path: group for group, paths in TOGETHER.items() for path in paths}


class LoadFileTogether(LoadFileScheduling):
    """`--dist loadfile`, with each group of TOGETHER one file; and the files in the order the workers collected
    them (`run_order`), not by their number of tests."""

    def _split_scope(self, nodeid: str) -> str:
        path = super()._split_scope(nodeid)
        return GROUP_OF.get(path, path)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: a process per core for the fast subset, which computes all the time; one more for a run with the
    slow tests, which wait on the processes they start (SLURM's jobs, servers, DVC's queue) about a quarter of theirs
    (docs/development.md#how-long-it-takes: 41 s of 13 min). PYTEST_XDIST_AUTO_NUM_WORKERS still decides, if set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or "not slow" in (config.option.markexpr or ""):
        return None  # pytest-xdist's own count: one per core
    return xdist_count(config) + 1


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadFileScheduling | None:
    if config.getoption("dist") != "loadfile":
        return None
    config.option.loadscopereorder = False  # read by the scheduler alone: keep run_order's order
    return LoadFileTogether(config, log)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the check sees every test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that needs the real data mirror (the end-to-end runs of the pipeline) is `slow`:
    `make test-fast` (`pytest -m "not slow"`) leaves them out. Files that share a session fixture are one group of
    TOGETHER; in a worker of `pytest -n`, the tests in `run_order`."""
    for item in items:
        if "mirror" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    check_together(items, config.rootpath)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=run_order(items, config.rootpath))


def file_of(item: pytest.Item, root: Path) -> str:
    return item.path.relative_to(root).as_posix()


def check_together(items: list[pytest.Item], root: Path) -> None:
    for name in SHARED_FIXTURES:
        files = sorted({file_of(i, root) for i in items if name in getattr(i, "fixturenames", ())})
        groups = {GROUP_OF.get(f) for f in files}
        if len(files) > 1 and (None in groups or len(groups) > 1):
            raise pytest.UsageError(
                f"{', '.join(files)} share the session fixture {name}: put them in one group of TOGETHER "
                "(tests/conftest.py), so that a run makes it once"
            )


def run_order(items: list[pytest.Item], root: Path) -> Callable[[pytest.Item], tuple[int, int]]:
    """The workers take a group (a file, or a group of TOGETHER) when nearly done with their own, in this order:
    the longest first, so that none is left to run alone at the end — the groups of TOGETHER, then the other system
    tests, then the rest as collected."""
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(file_of(item, root), index)

    def key(item: pytest.Item) -> tuple[int, int]:
        path = file_of(item, root)
        if path in GROUP_OF:
            return 0, list(TOGETHER).index(GROUP_OF[path])
        return 1 if path.startswith("tests/system/") else 2, first[path]

    return key


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real datasets (../shared/data here); CI must have them, elsewhere the test is skipped with a reason."""
    value = os.environ.get(ENV_VAR)
    if not value:
        reason = f"needs the real data: set {ENV_VAR} to a folder with mnist/ and emnist/ (see docs/data.md)"
        unavailable(reason, "run the end-to-end tests on the real data mirror")
    return Path(value).resolve()


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


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables made: creating them takes MLflow ~4 s, copying the file nothing."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    SqlAlchemyStore(f"sqlite:///{path}", str(path.parent / "artifacts")).engine.dispose()
    return path


@pytest.fixture
def tiny(tmp_path, monkeypatch, empty_store) -> Iterator[DictConfig]:
    """A fresh tiny project for one test (see `tiny_workdir`)."""
    with tiny_workdir(tmp_path, monkeypatch, empty_store) as cfg:
        yield cfg
