"""MLflow: where runs are stored, and how stages find the one run that belongs to a trained model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow

from pipeline.files import read_json, write_json

ENV_URI = "MLFLOW_TRACKING_URI"


def tracking_uri(configured: str, environ: Mapping[str, str] = os.environ) -> str:
    """MLFLOW_TRACKING_URI wins over the configured (embedded SQLite) store, so any server needs no code change."""
    return environ.get(ENV_URI) or configured


def connect(tracking_cfg: Mapping[str, Any]) -> None:
    uri = tracking_uri(tracking_cfg["uri"])
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(tracking_cfg["experiment"])


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


def save_run_ref(path: str | Path, run_id: str, experiment_id: str) -> None:
    write_json(path, {"run_id": run_id, "experiment_id": experiment_id, "tracking_uri": mlflow.get_tracking_uri()})


def load_run_id(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no MLflow run reference — run the train stage first (`dvc repro`)")
    return read_json(path)["run_id"]


def reopen_run(run_ref_path: str | Path, tracking_cfg: Mapping[str, Any]):
    """The trained model's run, reopened; an exception inside the `with` marks it FAILED."""
    connect(tracking_cfg)
    return mlflow.start_run(run_id=load_run_id(run_ref_path))
