"""Training progress that outlives the process, so that an interrupted training continues where it stopped.

A folder (`paths.checkpoints`, not a DVC output: DVC deletes a stage's outputs before it runs it) holds, while a
training is under way:
- `state.json`: the MLflow run and a fingerprint of the configuration it trains;
- `backup/`: Keras's BackupAndRestore state after the last completed epoch (weights, optimizer and its step
  count, so the learning-rate schedule goes on where it was; the epoch to start from);
- `best.weights.h5`: the best epoch's weights so far; `epochs.json`: every completed epoch's metrics;
- `seconds.json`: the seconds spent training up to the last completed epoch, over every process so far, so that a
  resumed training's time is the whole training's.
The next training with the same configuration reopens the same run and fits only the remaining epochs; one with
another configuration starts afresh. The folder is deleted once a training completes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import mlflow

from pipeline.core import interrupt
from pipeline.core.files import read_json, write_json
from pipeline.core.metric_direction import higher_is_better, keras_mode


def fingerprint(config: Mapping[str, Any]) -> str:
    """What a backup must match to be resumed: the whole resolved configuration."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Progress:
    folder: Path
    fingerprint: str
    run_id: str | None  # the interrupted training's run, to reopen; None: a new training
    epochs: list[dict[str, float]]  # the metrics of every epoch completed so far
    seconds: float = 0.0  # spent training by the earlier processes, up to their last completed epoch

    @classmethod
    def find(cls, folder: Path, config_fingerprint: str) -> Progress:
        """The interrupted training in `folder` if it trains this configuration; else a fresh start (a backup of
        another configuration is deleted, with a note)."""
        state_file = folder / "state.json"
        if state_file.is_file():
            state = read_json(state_file)
            if state.get("fingerprint") == config_fingerprint:
                epochs_file = folder / "epochs.json"
                epochs = read_json(epochs_file) if epochs_file.is_file() else []
                seconds_file = folder / SECONDS_FILE
                seconds = read_json(seconds_file)["seconds"] if seconds_file.is_file() else 0.0
                return cls(folder, config_fingerprint, state["run_id"], epochs, seconds)
            print(f"train: {folder} holds an interrupted training of another configuration; starting afresh")
        if folder.exists():
            shutil.rmtree(folder)
        return cls(folder, config_fingerprint, None, [])

    @property
    def resuming(self) -> bool:
        return self.run_id is not None

    @property
    def best_weights(self) -> Path:
        return self.folder / "best.weights.h5"

    def start(self, run_id: str) -> None:
        """Record the run before the first epoch, so that an interruption at any point can be resumed in it."""
        write_json(self.folder / "state.json", {"run_id": run_id, "fingerprint": self.fingerprint})

    def callbacks(self, monitor: str, started: float) -> list[keras.callbacks.Callback]:
        """In the order they must act at an epoch's end: keep the best weights, record and log the epoch and the
        seconds so far (this process's since `started`, a `time.perf_counter()`, and the earlier ones'), then
        back up the state (after which the epoch counts as done); a signal that comes meanwhile waits until all
        is written (the backup's weights and its epoch number are two files: cut between them, the backup would
        be of no use)."""
        values = [e[monitor] for e in self.epochs if monitor in e]
        best_so_far = (max if higher_is_better(monitor) else min)(values) if values else None
        return [
            HeldSignals(interrupt.hold),
            keras.callbacks.ModelCheckpoint(
                self.best_weights,
                monitor=monitor,
                mode=keras_mode(monitor),
                save_best_only=True,
                save_weights_only=True,
                initial_value_threshold=best_so_far,
            ),
            EpochRecorder(self.folder / "epochs.json", list(self.epochs)),
            SecondsRecorder(self.folder / SECONDS_FILE, self.seconds, started),
            keras.callbacks.BackupAndRestore(str(self.folder / "backup"), delete_checkpoint=False),
            HeldSignals(interrupt.release),
        ]

    def history(self) -> dict[str, list[float]]:
        """Every epoch's metrics, the resumed ones included, as Keras's History has them."""
        epochs = read_json(self.folder / "epochs.json")
        return {k: [e[k] for e in epochs] for k in epochs[0]}

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


SECONDS_FILE = "seconds.json"


class HeldSignals(keras.callbacks.Callback):
    """Calls `hold` or `release` (pipeline.core.interrupt) at an epoch's end, to bracket the callbacks between."""

    def __init__(self, action: Callable[[], None]):
        super().__init__()
        self.action = action

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.action()


class EpochRecorder(keras.callbacks.Callback):
    """Each completed epoch's loss, accuracy, validation metrics and learning rate: logged to the active MLflow
    run with step = epoch, and appended to a file that outlives the process.

    An epoch already recorded (done again after an interruption that came before its backup) is not logged a
    second time, so the run's metric history has every epoch once."""

    def __init__(self, path: Path, epochs: list[dict[str, float]]):
        super().__init__()
        self.path = path
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs if logs is not None else {}
        logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        values = {k: float(v) for k, v in logs.items()}
        if epoch < len(self.epochs):
            self.epochs[epoch] = values
        else:
            mlflow.log_metrics(values, step=epoch + 1)
            self.epochs.append(values)
        write_json(self.path, self.epochs)


class SecondsRecorder(keras.callbacks.Callback):
    """At each epoch's end, the training's seconds so far (the earlier processes' `before`, and this one's since
    `started`) in a file that outlives the process: a resumed training adds its own to them."""

    def __init__(self, path: Path, before: float, started: float):
        super().__init__()
        self.path = path
        self.before = before
        self.started = started

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        write_json(self.path, {"seconds": self.before + time.perf_counter() - self.started})
