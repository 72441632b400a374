"""A model's MLflow run, start to end: its provenance, params and datasets, its run.json, and how it ended."""

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
from mlflow import ActiveRun
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.core.errors import first_line
from pipeline.core.files import read_json, write_json
from pipeline.core.interrupt import Interrupted
from pipeline.tracking.store import connect


def provenance_tags(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The DVC experiment (name, baseline commit) when DVC runs us, the git commit of the code, and the member who
    ran it: the tracking server's login when there is one (MLflow's own tag says the machine's user name)."""
    tags = {"mlflow.user": environ["MLFLOW_TRACKING_USERNAME"]} if environ.get("MLFLOW_TRACKING_USERNAME") else {}
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
    by name and digest, to a run once.

    Two jobs of a parallel sweep log the same dataset at the same moment: MLflow's store looks for it, finds it
    in neither, and both insert it, so one fails on the table's unique key. By then the other's row is there, so
    logging once more links it instead (seen in a 2-job sweep on SQLite; the tracking server's store is the same)."""
    # A local file: resolving the bare path instead warns that two registered kinds of source could take it.
    where = get_dataset_source_from_json(json.dumps({"uri": str(source)}), source_type="local")
    dataset = mlflow.data.from_numpy(x, source=where, targets=y, name=name, digest=content_digest(x, y))
    try:
        mlflow.log_input(dataset, context=context)
    except MlflowException as error:
        if not lost_insert_race(error):
            raise
        mlflow.log_input(dataset, context=context)


def lost_insert_race(error: Exception) -> bool:
    """Whether a store refused a row because another writer had just inserted the same key (SQLite, PostgreSQL,
    MySQL each say it their own way)."""
    message = str(error).lower()
    return any(words in message for words in ("unique constraint", "duplicate key", "duplicate entry"))


@contextmanager
def training_run(
    run_name: str, parent_run_id: str | None, resume_run_id: str | None, tags: Mapping[str, str] | None = None
) -> Iterator[ActiveRun]:
    """A new run for a training (a child of `parent_run_id` in a sweep, with `tags` such as its variant), or the
    interrupted one it resumes; it ends as `ending_recorded` says.

    MLflow samples the machine's CPU, memory and disk into it (`system/*` metrics) while it trains, so that a slow
    run can be told from a busy machine."""
    if resume_run_id is not None:
        with reopened(resume_run_id, log_system_metrics=True) as run, ending_recorded("train"):
            yield run
        return
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
    with reopened(run_id) as run, ending_recorded(stage):
        yield run


END_TAG = "run.ended_by"
INTERRUPTIONS_TAG = "run.interruptions"


def taken_up_again(status: str, tags: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The tags to set and to delete on a run reopened in the state `status` with `tags`. A run that did not finish
    (KILLED, FAILED, or RUNNING when its process was killed outright) is being taken up again: its
    `run.interruptions` grows by one and its `run.ended_by`, which said how that attempt ended, goes, so that once
    it finishes it no longer reads as interrupted. A FINISHED run (evaluate reopening a completed training) keeps
    its tags."""
    if status == RunStatus.to_string(RunStatus.FINISHED):
        return {}, []
    count = int(tags.get(INTERRUPTIONS_TAG, "0")) + 1
    return {INTERRUPTIONS_TAG: str(count)}, [END_TAG] if END_TAG in tags else []


@contextmanager
def reopened(run_id: str, **start_options: Any) -> Iterator[ActiveRun]:
    """An existing run, active again (`mlflow.start_run(run_id=…)`), its tags as `taken_up_again` says."""
    client = MlflowClient()
    before = client.get_run(run_id)
    with mlflow.start_run(run_id=run_id, **start_options) as run:
        to_set, to_delete = taken_up_again(before.info.status, before.data.tags)
        mlflow.set_tags(to_set)
        for key in to_delete:
            client.delete_tag(run_id, key)
        yield run


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
