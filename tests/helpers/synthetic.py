"""Tiny synthetic data for in-process tests of the stages: no mirror, seconds per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig

from pipeline.data.datasets import DIGIT_NAMES, Dataset, all_rows, save_dataset
from pipeline.data.mirror import ENV_VAR
from tests.helpers.configs import tiny_config


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
        train_rows=all_rows(n_train),
        test_rows=all_rows(n_test),
        train_file="synthetic-train-images",
        test_file="synthetic-test-images",
    )


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


BALANCED = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt")  # EMNIST balanced's 47 classes
