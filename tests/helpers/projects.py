"""A tiny project folder for tests that start the real entrypoints as processes: the prepared MNIST-shaped set made
of synthetic images, large enough that an epoch takes a few seconds; the process started there with this repository
importable; and waiting for a training's progress."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipeline.core.tensorflow_startup import LEVEL as TF_LEVEL
from pipeline.data.datasets import save_dataset
from pipeline.data.mirror import ENV_VAR
from tests.helpers.repos import REPO
from tests.helpers.synthetic import synthetic_dataset

N_TRAIN = 6000  # about 170 steps an epoch at batch 32: seconds, so that a signal sent after epoch 1 lands in epoch 2


def project(folder: Path, store: Path | None = None) -> Path:
    """A project folder after fetch and ingest: the prepared MNIST-shaped set, and a copy of an empty MLflow store
    (none: the runs go where MLFLOW_TRACKING_URI says)."""
    save_dataset(folder / "data" / "prepared" / "mnist.npz", synthetic_dataset(10, N_TRAIN, 100, seed=1))
    if store is not None:
        (folder / "mlruns").mkdir()
        shutil.copy(store, folder / "mlruns" / "mlflow.db")
    return folder


def start(folder: Path, module: str, *args: str, **env: str) -> subprocess.Popen:
    """`python -m <module> <args>` in `folder`, with no MLflow, DVC or mirror setting but those in `env`."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_")) and k not in (ENV_VAR, TF_LEVEL)
    }
    environ.update(PYTHONPATH=str(REPO), **env)
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=folder,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epochs(epochs_file: Path, count: int, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until the training has completed `count` epochs (the progress file says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the process ended first:\n{process.communicate()[1][-3000:]}")
        if epochs_file.is_file() and len(json.loads(epochs_file.read_text() or "[]")) >= count:
            return
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no {count} epoch(s) in {timeout} s")
