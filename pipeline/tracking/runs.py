"""MLflow: where runs are stored, and how stages find the one run that belongs to a trained model."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from filelock import FileLock
from mlflow import ActiveRun
from mlflow.data.dataset_source_registry import get_dataset_source_from_json

from pipeline.core.errors import UserError, first_line
from pipeline.core.files import read_json, write_json
from pipeline.core.interrupt import Interrupted
from pipeline.core.paths import CONF, project_root
from pipeline.tracking import reach

ENV_URI = "MLFLOW_TRACKING_URI"


def tracking_uri(configured: str, environ: Mapping[str, str] = os.environ) -> str:
    """MLFLOW_TRACKING_URI wins over the configured (embedded SQLite) store, so any server needs no code change."""
    return environ.get(ENV_URI) or configured


def local_store(uri: str, root: Path) -> Path | None:
    """The file of a relative `sqlite:///` URI, anchored at `root`; None for any other URI."""
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:////"):
        return None
    return root / uri.removeprefix("sqlite:///")


def resolved_uri(configured: str) -> tuple[str, Path | None]:
    """The URI to use, and the embedded store's file when that is what it names: in the user's project, also when
    DVC runs a queued experiment in a temporary copy, so that every run lands in one store."""
    uri = tracking_uri(configured)
    store = local_store(uri, project_root())
    return (f"sqlite:///{store}", store) if store is not None else (uri, None)


def server_problems(tracking_cfg: Mapping[str, Any], timeout: float = reach.TIMEOUT) -> list[str]:
    """Why the configured tracking server cannot be used, asked within seconds: [] when it answers, or when the
    store is not a server. MLflow's client would retry for minutes, and a training could end with nowhere to go.
    (Once a run is under way, MLflow's retries stay: a server restarting mid-training must not fail it.)"""
    uri = resolved_uri(tracking_cfg["uri"])[0]
    if not uri.startswith(("http://", "https://")):
        return []
    problem = reach.http_problem(f"{uri.rstrip('/')}/health", timeout)
    if problem is None:
        return []
    source = ENV_URI if os.environ.get(ENV_URI) else "tracking.uri"
    fix = "is it running (`make server` starts one) and are the address and port right?"
    return [f"MLflow tracking server {uri} ({source}) not reachable: {problem} — {fix}"]


def check_server(tracking_cfg: Mapping[str, Any]) -> None:
    if problems := server_problems(tracking_cfg):
        raise UserError(problems[0])


def connect(tracking_cfg: Mapping[str, Any]) -> None:
    """Point MLflow at the configured store and experiment; a tracking server that does not answer is a
    UserError before anything else happens. A server decides where artifacts go (its proxied store); the
    embedded store keeps them in a folder beside its file."""
    check_server(tracking_cfg)
    uri, store = resolved_uri(tracking_cfg["uri"])
    mlflow.set_tracking_uri(uri)
    name = tracking_cfg["experiment"]
    if store is None:
        mlflow.set_experiment(name)
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    # Parallel sweep jobs and queued experiments connect at once. MLflow makes a new store's tables, and we the
    # experiment, with no guard against another process doing the same (four at once on a new store: an
    # alembic error in every one); so one process at a time. Once set up, writes need no lock: MLflow gives
    # SQLite a 20 s busy timeout.
    with FileLock(f"{store}.lock"):
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=(store.parent / name).as_uri())
        mlflow.set_experiment(name)


def connect_default() -> None:
    """For tools outside the pipeline (predict, promote): the project's configured store, as the stages use it.

    An embedded store that is not there is an error naming it: run from another folder, the tool would otherwise
    look in a new, empty store (or fail on the folder it lacks) and report the run or model as unknown."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / "tracking" / "local.yaml")
    check_server(cfg)
    uri, store = resolved_uri(cfg.uri)
    if store is not None and not store.is_file():
        raise UserError(
            f"{store}: no MLflow store — run this in the project's folder, where `dvc repro` made it, or set "
            f"{ENV_URI} to the store to use"
        )
    mlflow.set_tracking_uri(uri)


def provenance_tags(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The DVC experiment (name, baseline commit) when DVC runs us, and the git commit of the code."""
    tags = {}
    if environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = environ["DVC_EXP_NAME"]
    commit = environ.get("DVC_EXP_BASELINE_REV") or git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git.commit"] = commit
    return tags


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"train.epochs": 15, ...}, the shape MLflow params and the compare view want."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def save_run_ref(path: str | Path, run_id: str, experiment_id: str, model_uri: str | None = None) -> None:
    ref = {"run_id": run_id, "experiment_id": experiment_id, "tracking_uri": mlflow.get_tracking_uri()}
    write_json(path, ref if model_uri is None else {**ref, "model_uri": model_uri})


def load_run_id(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no MLflow run reference — run the train stage first (`dvc repro`)")
    return read_json(path)["run_id"]


def content_digest(x: np.ndarray, y: np.ndarray) -> str:
    """The images and labels a run used, as 12 hex digits of their SHA-256 (60,000 MNIST images: ~40 ms).

    MLflow knows a dataset by its name and digest, and links it to a run once: so the digest is of the part
    used (the training part, the validation part, the test images evaluated), not of the file they came from,
    which would make the three one dataset. MLflow's own digest hashes only the first 10,000 pixel values."""
    digest = hashlib.sha256()
    for array in (x, y):
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array))
    return digest.hexdigest()[:12]


def log_dataset(name: str, source: Path, x: np.ndarray, y: np.ndarray, context: str) -> None:
    """To the active run, as an MLflow dataset input (the UI's Dataset column and filters): `name` (`mnist`), the
    prepared file it was read from, its digest, and `context` (training, validation or test) saying the split.

    Logged again in the same run (a resumed training), it is not added a second time: MLflow links a dataset,
    by name and digest, to a run once."""
    # A local file: resolving the bare path instead warns that two registered kinds of source could take it.
    where = get_dataset_source_from_json(json.dumps({"uri": str(source)}), source_type="local")
    dataset = mlflow.data.from_numpy(x, source=where, targets=y, name=name, digest=content_digest(x, y))
    mlflow.log_input(dataset, context=context)


@contextmanager
def training_run(
    run_name: str, parent_run_id: str | None, resume_run_id: str | None, tags: Mapping[str, str] | None = None
) -> Iterator[ActiveRun]:
    """A new run for a training (a child of `parent_run_id` in a sweep, with `tags` such as its variant), or the
    interrupted one it resumes; it ends as `ending_recorded` says.

    MLflow samples the machine's CPU, memory and disk into it (`system/*` metrics) while it trains, so that a slow
    run can be told from a busy machine."""
    if resume_run_id is not None:
        started = mlflow.start_run(run_id=resume_run_id, log_system_metrics=True)
    else:
        started = mlflow.start_run(
            run_name=run_name,
            parent_run_id=parent_run_id,
            tags={**provenance_tags(), **(tags or {})},
            log_system_metrics=True,
        )
    with started as run, ending_recorded("train"):
        yield run


@contextmanager
def reopen_run(run_ref_path: str | Path, tracking_cfg: Mapping[str, Any], stage: str) -> Iterator[ActiveRun]:
    """The trained model's run, reopened for `stage`; it ends as `ending_recorded` says."""
    run_id = load_run_id(run_ref_path)  # first: with no trained model, no store is made either
    connect(tracking_cfg)
    with mlflow.start_run(run_id=run_id) as run, ending_recorded(stage):
        yield run


END_TAG = "run.ended_by"


@contextmanager
def ending_recorded(stage: str) -> Iterator[None]:
    """Inside an active run: an interruption ends it KILLED, an error FAILED, each with what happened in the tag
    `run.ended_by` (the run's status alone does not say which stage stopped or why)."""
    try:
        yield
    except Interrupted as stop:
        mlflow.set_tag(END_TAG, f"{stage}: {stop}")
        mlflow.end_run("KILLED")
        raise
    except Exception as err:
        mlflow.set_tag(END_TAG, f"{stage}: {type(err).__name__}: {first_line(err, limit=480)}")
        mlflow.end_run("FAILED")
        raise
