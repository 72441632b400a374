"""How a Keras network is fitted here: Adam on the configured learning-rate schedule (one-cycle, or a constant rate
that plateaus halve), a checkpoint of the best epoch, every epoch logged and backed up for resuming."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from pipeline.core.metric_direction import higher_is_better, keras_mode
from pipeline.modeling.batches import batches
from pipeline.modeling.progress import Progress


def learning_rate(train_cfg: Mapping[str, Any], steps_per_epoch: int):
    """one_cycle: a linear warm-up from a tenth of the peak, then a cosine down to `final_learning_rate_fraction`
    of it, over exactly the configured epochs (short schedules converge faster than a constant rate halved on
    plateaus); plateau: the constant starting rate that ReduceLROnPlateau halves."""
    peak = train_cfg["learning_rate"]
    if train_cfg["schedule"] == "plateau":
        return peak
    if train_cfg["schedule"] != "one_cycle":
        raise ValueError(f"train.schedule: unknown schedule {train_cfg['schedule']!r}; known: one_cycle, plateau")
    total = train_cfg["epochs"] * steps_per_epoch
    warmup = min(int(train_cfg["warmup_epochs"] * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        peak / 10,
        decay_steps=total - warmup,
        alpha=train_cfg["final_learning_rate_fraction"],
        warmup_target=peak,
        warmup_steps=warmup,
    )


def schedule_callbacks(train_cfg: Mapping[str, Any]) -> list[keras.callbacks.Callback]:
    """The origin projects' plateau schedule adapts to the validation loss; one_cycle runs its planned course."""
    if train_cfg["schedule"] != "plateau":
        return []
    monitor = train_cfg["monitor"]
    return [
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode=keras_mode(monitor), patience=train_cfg["early_stopping_patience"]
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            mode=keras_mode(monitor),
            factor=train_cfg["reduce_lr_factor"],
            patience=train_cfg["reduce_lr_patience"],
            min_lr=train_cfg["min_learning_rate"],
        ),
    ]


def compile_for_training(model: keras.Model, train_cfg: Mapping[str, Any], n_train: int) -> None:
    """Adam on the configured schedule, sparse cross-entropy, accuracy."""
    steps_per_epoch = -(-n_train // train_cfg["batch_size"])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(train_cfg, steps_per_epoch)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=train_cfg["steps_per_execution"],
    )


@dataclass(frozen=True)
class Fit:
    """What a fit leaves besides the model's weights."""

    history: dict[str, list[float]]  # per epoch, every one (resumed ones too): loss, accuracy, validation, LR
    seconds: float  # compiling and fitting, in this process
    epochs_fitted: int  # in this process: fewer than the history's when resumed
    seconds_before: float = 0.0  # a resumed training's earlier processes', up to their last completed epoch

    @property
    def total_seconds(self) -> float:
        """The whole training's, over every process that worked on it."""
        return self.seconds_before + self.seconds


def fit(
    model: keras.Model,
    train,
    val,
    train_cfg: Mapping[str, Any],
    seed: int,
    progress: Progress,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Fit:
    """Train as configured, each epoch logged to the active MLflow run and backed up in `progress` (a resumed
    training fits only the epochs left); leaves in `model` the weights of the best epoch by `train.monitor`.
    `callbacks` act at each epoch's end after it is recorded (a search's pruning: pipeline/modeling/pruning.py)."""
    started = time.perf_counter()
    compile_for_training(model, train_cfg, len(train[0]))
    history = model.fit(
        batches(*train, batch_size=train_cfg["batch_size"], shuffle_seed=seed),
        validation_data=batches(*val, batch_size=train_cfg["batch_size"]),
        epochs=train_cfg["epochs"],
        shuffle=False,  # `batches` reshuffles every epoch itself
        callbacks=[*schedule_callbacks(train_cfg), *progress.callbacks(train_cfg["monitor"], started), *callbacks],
        verbose=1 if sys.stdout.isatty() else 2,  # a bar in a terminal; in a log (sweeps, CI) a line per epoch
    )
    seconds = time.perf_counter() - started
    model.load_weights(progress.best_weights)
    return Fit(progress.history(), seconds, len(history.epoch), progress.seconds)


def best_epoch(history: Mapping[str, list[float]], monitor: str) -> int:
    """1-based epoch whose monitored value was best (the one the checkpoint kept)."""
    values = history[monitor]
    pick = np.argmax if higher_is_better(monitor) else np.argmin
    return int(pick(values)) + 1
