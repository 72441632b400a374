"""Stage `train`: fit the configured network on the prepared training set, tracked as a new MLflow run.

Writes models/model.keras (the best epoch's weights), models/history.json, models/augmented.npz (a few training
images as augmentation presents them) and models/run.json (the MLflow run that evaluate and report add to). The
run records the training and validation parts as its datasets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.cpu import cpu_flags
from pipeline.core.errors import reports_user_errors
from pipeline.core.files import atomic_path, write_json, write_npz
from pipeline.core.interrupt import stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.data.datasets import load_dataset, prepared_path
from pipeline.data.exclusion import excluded_positions, listed_images
from pipeline.modeling.augment import augmented_examples
from pipeline.modeling.fitting import Fit, best_epoch, fit
from pipeline.modeling.flops import forward_flops, training_flops
from pipeline.modeling.fused import copy_weights, with_fused_batch_norm
from pipeline.modeling.model_file import save_with_class_names
from pipeline.modeling.models import build_model
from pipeline.modeling.precision import dtype_policy, resolve_precision
from pipeline.modeling.progress import Progress, fingerprint
from pipeline.modeling.serving import log_keras_model
from pipeline.tracking import registry, runs, store


def train(
    cfg: DictConfig,
    run_name: str,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    without: np.ndarray | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    register: bool = True,
) -> str:
    """Train as configured inside a new MLflow run (nested under `parent_run_id` in a sweep, tagged with `tags`),
    on the training set but the images at the positions `without` (a K-fold's held-out fold: pipeline/kfold.py),
    with `callbacks` at each epoch's end (a search's pruning: pipeline/tune.py); returns its id. The model is logged
    to the run, and registered as a version of the dataset's model only if `register`: a training someone may
    promote (the stage, a sweep's variant), not a search's trial or a K-fold's fold, which would bury those.

    The steps: prepare the data, build the network, fit it, export the best epoch's weights as a plain model."""
    models_dir = Path(cfg.paths.models)
    config = OmegaConf.to_container(cfg, resolve=True)
    progress = Progress.find(Path(cfg.paths.checkpoints), fingerprint(config))
    store.connect(cfg.tracking)
    with runs.training_run(run_name, parent_run_id, progress.run_id, tags) as run:
        # Everything that can fail happens inside the run, so that a failure is a FAILED run, not a missing one.
        mlflow.log_params(runs.flatten(config))  # the same values again when resuming, which MLflow allows
        progress.start(run.info.run_id)
        if progress.resuming:
            mlflow.set_tag("train.resumed_after_epoch", len(progress.epochs))
            print(f"train: resuming MLflow run {run.info.run_id} after epoch {len(progress.epochs)}", flush=True)
        source = prepared_path(cfg.paths.prepared, cfg.data.name)
        exclude_list = Path(cfg.data.exclude_label_issues) if cfg.data.exclude_label_issues else None
        data = prepare_data(source, cfg.data.train_limit, cfg.train.validation_split, cfg.seed, without, exclude_list)
        if exclude_list is not None:
            mlflow.set_tag("data.excluded_images", data.excluded)
            mlflow.log_artifact(str(exclude_list), "excluded")  # the list itself: its path may change or go
        runs.log_dataset(cfg.data.name, source, *data.train, "training")
        runs.log_dataset(cfg.data.name, source, *data.val, "validation")
        model, precision = build_training_model(cfg.model, cfg.augment, cfg.train, data.num_classes, cfg.seed)
        flops = forward_flops(model)
        mlflow.set_tags(
            {"dataset.train": data.source, "model.parameters": model.count_params(), "train.precision_used": precision}
        )
        mlflow.log_metric("model.forward_flops", flops)
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        print(
            f"train: {run_name}: {len(data.train[0])} training, {len(data.val[0])} validation images"
            f"{f' ({data.excluded} left out as label issues)' if exclude_list else ''}, "
            f"{model.count_params():,} parameters, {flops / 1e6:.1f} MFLOP per image, {precision}; "
            f"MLflow run {run.info.run_id}",
            flush=True,
        )

        fitted = fit(model, data.train, data.val, cfg.train, cfg.seed, progress, callbacks)

        best = plain_float32_copy(model, cfg.model, cfg.augment, data.num_classes)
        summary = training_summary(fitted, cfg.train.monitor, len(data.train[0]), precision, flops)
        mlflow.log_metrics({f"train.{k}": v for k, v in summary.items() if k != "precision"})
        registered, model_uri = export_model(best, data.class_names, cfg.data.name, register)
        write_outputs(models_dir, best, summary, fitted.history, data, cfg.augment, cfg.seed)
        runs.save_run_ref(models_dir / "run.json", run.info.run_id, run.info.experiment_id, model_uri)
    progress.clear()  # complete: the next training starts afresh
    print(
        f"train: done in {fitted.total_seconds:.0f} s, best epoch {summary['best_epoch']} of {summary['epochs_run']}; "
        f"{f'registered as {registered}, ' if registered else ''}logged as {model_uri}",
        flush=True,
    )
    return run.info.run_id


# Prepare: the images to train on and to choose the best epoch by.


def validation_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """A seeded shuffle, then the last `fraction` held out: (x_train, y_train), (x_val, y_val)."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = round(len(x) * fraction)
    train, val = order[: len(x) - n_val], order[len(x) - n_val :]
    return (x[train], y[train]), (x[val], y[val])


@dataclass(frozen=True)
class TrainingData:
    """The images to fit on, the images that pick the best epoch, and the classes the model's outputs name."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    class_names: tuple[str, ...]
    source: str  # where the images came from, as ingest recorded it
    excluded: int = 0  # training images a label-issues list left out (data.exclude_label_issues)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def prepare_data(
    path: Path,
    limit: int | None,
    validation_fraction: float,
    seed: int,
    without: np.ndarray | None = None,
    exclude_list: Path | None = None,
) -> TrainingData:
    """The prepared dataset's first `limit` training images (every one for None), but those at the positions
    `without` and those the label-issues list `exclude_list` names, split by `validation_split`."""
    ds = load_dataset(path)
    x, y = ds.x_train[:limit], ds.y_train[:limit]
    kept = np.ones(len(y), dtype=bool)
    if without is not None:
        kept[without] = False
    listed = np.empty(0, dtype=np.int64)
    if exclude_list is not None:
        listed = excluded_positions(
            exclude_list, *listed_images(exclude_list), ds.train_rows, ds.y_train, ds.class_names, ds.train_file
        )
        listed = listed[listed < len(y)]  # beyond train_limit: not trained on anyway
        kept[listed] = False
    train, val = validation_split(x[kept], y[kept], validation_fraction, seed)
    return TrainingData(train, val, ds.class_names, ds.source, excluded=len(listed))


# Build: the network as it trains.


def build_training_model(
    model_cfg: Mapping[str, Any],
    augment_cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any],
    num_classes: int,
    seed: int,
) -> tuple[keras.Model, str]:
    """The configured network, freshly initialised, in the precision it trains in (returned with it: `auto` is
    resolved here), with TensorFlow's fused batch norm if configured.

    Seeds every generator (Python, NumPy, TensorFlow, Keras) first, for the initial weights and the training."""
    keras.utils.set_random_seed(seed)
    precision = resolve_precision(train_cfg["precision"], cpu_flags())
    with dtype_policy(precision):
        model = build_model(model_cfg, augment_cfg, num_classes)
        if train_cfg["fused_batch_norm"]:
            model = with_fused_batch_norm(model)
    return model, precision


# Export: what is saved, logged and served, and what the later stages read.


def plain_float32_copy(
    model: keras.Model, model_cfg: Mapping[str, Any], augment_cfg: Mapping[str, Any], num_classes: int
) -> keras.Model:
    """`model`'s weights in plain Keras layers in float32, whatever kernels and precision trained them: the model
    that is saved and served needs nothing from this project to load."""
    with dtype_policy("float32"):
        return copy_weights(model, build_model(model_cfg, augment_cfg, num_classes))


def training_summary(fitted: Fit, monitor: str, n_train: int, precision: str, flops: int) -> dict[str, Any]:
    """What history.json leads with; all but the precision are also the run's train.* metrics. `flops`: the
    network's forward FLOPs per image; the run's total counts every epoch, resumed ones too, and its seconds every
    process that trained it (images per second: this process's own rate)."""
    epochs = len(fitted.history["loss"])
    return {
        "epochs_run": epochs,
        "flops": training_flops(flops, n_train, epochs),
        "best_epoch": best_epoch(fitted.history, monitor),
        "train_seconds": round(fitted.total_seconds, 1),
        "images_per_second": round(fitted.epochs_fitted * n_train / fitted.seconds, 1),
        "precision": precision,
    }


def export_model(
    model: keras.Model, class_names: tuple[str, ...], dataset_name: str, register: bool
) -> tuple[str | None, str]:
    """Log the model to the active run and, if `register`, register it as a new version of the dataset's model;
    returns which (`handwriting-mnist/3`, also the run's tag `model.registered`; None when not registered) and the
    logged model's URI (`models:/<model id>`)."""
    info = log_keras_model(model, class_names)
    if not register:
        return None, info.model_uri
    name = registry.model_name(dataset_name)
    version = registry.register(name, info.model_id, mlflow.active_run().info.run_id)
    registered = registry.version_label(name, version.version)
    mlflow.set_tag(registry.REGISTERED_TAG, registered)
    return registered, info.model_uri


def write_augmented_examples(
    path: Path,
    train_set: tuple[np.ndarray, np.ndarray],
    augment_cfg: Mapping[str, Any],
    seed: int,
    count: int = 10,
    copies: int = 3,
) -> None:
    """A few training images and what the augmentation policy makes of them, for the report stage to draw
    (it does not load Keras)."""
    x, y = train_set
    pick = np.random.default_rng(seed).choice(len(x), size=min(count, len(x)), replace=False)
    write_npz(path, original=x[pick], labels=y[pick], augmented=augmented_examples(x[pick], augment_cfg, copies))


def write_outputs(
    models_dir: Path,
    model: keras.Model,
    summary: Mapping[str, Any],
    history: Mapping[str, list[float]],
    data: TrainingData,
    augment_cfg: Mapping[str, Any],
    seed: int,
) -> None:
    """model.keras (carrying its class names), history.json (the summary, the class names and every epoch) and
    augmented.npz."""
    with atomic_path(models_dir / "model.keras") as out:
        save_with_class_names(model, out, data.class_names)
    write_json(models_dir / "history.json", {**summary, "class_names": list(data.class_names), "history": history})
    write_augmented_examples(models_dir / "augmented.npz", data.train, augment_cfg, seed)


def default_run_name(cfg: DictConfig) -> str:
    return f"{cfg.model.name} augment={cfg.augment.name} on {cfg.data.name}"


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> None:
    validate(cfg)
    name = default_run_name(cfg)
    dvc_experiment = os.environ.get("DVC_EXP_NAME")
    train(cfg, f"{dvc_experiment}: {name}" if dvc_experiment else name)


if __name__ == "__main__":
    skip_final_collection()
    stop_on_signals(main, "train")
