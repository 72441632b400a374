"""Stopping an unpromising training: after each epoch, its validation metric goes to a judge (an Optuna trial,
pipeline/tune.py) that may say the training is worse than others were at the same epoch.

A stop, not an exception: optuna-integration's KerasPruningCallback raises TrialPruned from inside `fit`, which
would end the training's MLflow run FAILED (any exception does: pipeline/tracking/runs.py), skip the export of its
best epoch and leave its resume backup behind. Stopped like EarlyStopping stops a training, a pruned trial is a
FINISHED run with fewer epochs, and the search marks it pruned.
"""

from __future__ import annotations

from typing import Protocol

import keras


class Judge(Protocol):
    """What an Optuna trial offers for pruning."""

    def report(self, value: float, step: int) -> None: ...
    def should_prune(self) -> bool: ...


class PruneUnpromising(keras.callbacks.Callback):
    """Reports `monitor` after each epoch (step = the epoch, 1-based, as the run's metrics count them) and stops
    the training when the judge says to prune; `pruned_after` is then that epoch."""

    def __init__(self, judge: Judge, monitor: str):
        super().__init__()
        self.judge = judge
        self.monitor = monitor
        self.pruned_after: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"train.monitor={self.monitor}: not among this training's metrics {sorted(logs or {})}")
        self.judge.report(float(value), step=epoch + 1)
        if self.judge.should_prune():
            self.pruned_after = epoch + 1
            self.model.stop_training = True
