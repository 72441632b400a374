"""The train stage: each of its steps (prepare, build, fit, export) and its helpers, then `train` itself in-process
on tiny synthetic data, as MLflow and the later stages see it."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline.config.schema import MONITORS
from pipeline.core.cpu import cpu_flags
from pipeline.core.files import read_json
from pipeline.core.metric_direction import higher_is_better
from pipeline.data.datasets import DIGIT_NAMES, Dataset, all_rows, load_dataset, save_dataset
from pipeline.data.exclusion import ExclusionError
from pipeline.modeling.batches import batches
from pipeline.modeling.fitting import Fit, best_epoch, fit, learning_rate, schedule_callbacks
from pipeline.modeling.flops import forward_flops
from pipeline.modeling.fused import FusedBatchNormalization
from pipeline.modeling.model_file import read_class_names
from pipeline.modeling.models import build_model
from pipeline.modeling.precision import resolve_precision
from pipeline.modeling.progress import Progress
from pipeline.scoring.label_quality import LabelIssues, issues_csv
from pipeline.tracking import runs
from pipeline.tracking.store import connect
from pipeline.train import (
    TrainingData,
    build_training_model,
    plain_float32_copy,
    prepare_data,
    train,
    training_summary,
    validation_split,
    write_outputs,
)
from tests.helpers.configs import tiny_config
from tests.helpers.marks import needs_bfloat16_kernels
from tests.helpers.synthetic import synthetic_dataset, tiny_workdir


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, empty_store) -> Iterator[Path]:
    """conftest's `tiny` for the whole module (it is per test)."""
    folder = tmp_path_factory.mktemp("tiny")
    with pytest.MonkeyPatch.context() as mp, tiny_workdir(folder, mp, empty_store):
        yield folder


def store(folder: Path) -> MlflowClient:
    """The folder's embedded store, whatever store MLflow's global state points at now."""
    return MlflowClient(tracking_uri=f"sqlite:///{folder}/mlruns/mlflow.db")


# Prepare


def test_validation_split_is_a_seeded_disjoint_division_of_every_image():
    x = np.arange(50).reshape(50, 1)  # each image names its own index
    y = np.arange(50) % 10
    (x_train, y_train), (x_val, y_val) = validation_split(x, y, 0.1, seed=3)
    assert (len(x_train), len(x_val)) == (45, 5)
    assert sorted(np.concatenate([x_train, x_val])[:, 0]) == list(range(50))
    np.testing.assert_array_equal(y_train, x_train[:, 0] % 10)  # labels stay with their images
    np.testing.assert_array_equal(y_val, x_val[:, 0] % 10)
    np.testing.assert_array_equal(validation_split(x, y, 0.1, seed=3)[1][0], x_val)
    assert not np.array_equal(validation_split(x, y, 0.1, seed=4)[1][0], x_val)
    assert len(validation_split(x, y, 0.25, seed=3)[1][0]) == 12  # rounded: 12.5 -> 12


def numbered_dataset(n_train: int) -> Dataset:
    """Training images that carry their index in their first pixel, labels their index modulo 10."""
    x = np.zeros((n_train, 28, 28), np.uint8)
    x[:, 0, 0] = np.arange(n_train)
    empty = np.zeros((0, 28, 28), np.uint8)
    y = (np.arange(n_train) % 10).astype(np.uint8)
    return Dataset(x, y, empty, np.zeros(0, np.uint8), DIGIT_NAMES, "numbered", all_rows(n_train), all_rows(0), "n", "")


def test_prepare_data_splits_the_first_training_images_of_the_prepared_dataset(tmp_path):
    ds = numbered_dataset(200)
    save_dataset(tmp_path / "numbered.npz", ds)
    data = prepare_data(tmp_path / "numbered.npz", 100, 0.2, seed=5)
    (x_train, _), (x_val, y_val) = data.train, data.val
    assert (len(x_train), len(x_val)) == (80, 20)
    assert sorted(np.concatenate([x_train, x_val])[:, 0, 0]) == list(range(100))
    (_, _), (expected_x_val, expected_y_val) = validation_split(ds.x_train[:100], ds.y_train[:100], 0.2, seed=5)
    np.testing.assert_array_equal(x_val, expected_x_val)
    np.testing.assert_array_equal(y_val, expected_y_val)
    assert data.class_names == DIGIT_NAMES and data.num_classes == 10 and data.source == "numbered"
    assert len(prepare_data(tmp_path / "numbered.npz", None, 0.2, seed=5).train[0]) == 160


def test_prepare_data_leaves_out_the_images_a_label_issues_list_names_from_training_and_validation(tmp_path):
    ds = numbered_dataset(200)
    ds = dataclasses.replace(ds, train_rows=ds.train_rows[::-1].copy())  # official rows in another order
    save_dataset(tmp_path / "numbered.npz", ds)
    listed = [5, 17, 150]  # positions; 150 is beyond the limit of 100 below
    issues = LabelIssues(np.array(listed), np.zeros(3), np.zeros(3, int), np.ones(3, bool))
    probs = np.full((200, 10), 0.1)
    csv_path = tmp_path / "numbered_train.csv"
    csv_path.write_text(issues_csv(issues, probs, ds.y_train, ds.train_rows, DIGIT_NAMES), "utf-8")
    data = prepare_data(tmp_path / "numbered.npz", 100, 0.2, seed=5, exclude_list=csv_path)
    kept = sorted(np.concatenate([data.train[0], data.val[0]])[:, 0, 0])
    assert kept == [i for i in range(100) if i not in (5, 17)] and data.excluded == 2
    assert prepare_data(tmp_path / "numbered.npz", None, 0.2, seed=5, exclude_list=csv_path).excluded == 3


def test_prepare_data_without_the_prepared_dataset_says_which_stage_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist\.npz: prepared dataset not found — run `dvc repro`"):
        prepare_data(tmp_path / "mnist.npz", None, 0.1, seed=0)


# Build


SMALL_CNN = {"name": "cnn3_bn", "filters": [4], "conv_dropout": 0.0, "dense_units": [8], "dense_dropout": 0.0}
NO_AUGMENT = {"name": "none"}


def test_build_training_model_fuses_batch_norm_and_trains_in_the_resolved_precision():
    cfg = {"precision": "mixed_bfloat16", "fused_batch_norm": True}
    model, precision = build_training_model(SMALL_CNN, NO_AUGMENT, cfg, 47, seed=1)
    assert precision == "mixed_bfloat16"
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is FusedBatchNormalization for layer in norms)
    assert {layer.dtype_policy.name for layer in norms} == {"mixed_bfloat16"}
    assert model.output_shape == (None, 47)
    assert keras.config.dtype_policy().name == "float32", "the process-wide policy is put back"


def test_build_training_model_plain_and_float32_and_auto_as_the_cpu_decides():
    model, precision = build_training_model(
        SMALL_CNN, NO_AUGMENT, {"precision": "float32", "fused_batch_norm": False}, 10, 1
    )
    assert precision == "float32"
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
    assert {w.dtype for w in model.weights} == {"float32"}
    auto = build_training_model(SMALL_CNN, NO_AUGMENT, {"precision": "auto", "fused_batch_norm": False}, 10, 1)[1]
    assert auto == resolve_precision("auto", cpu_flags())


def test_build_training_model_initialises_from_the_seed():
    cfg = {"precision": "float32", "fused_batch_norm": True}

    def weights(seed):
        return build_training_model(SMALL_CNN, NO_AUGMENT, cfg, 10, seed)[0].get_weights()

    first, again, other = weights(1), weights(1), weights(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


# Fit


ONE_CYCLE = {
    "schedule": "one_cycle",
    "learning_rate": 0.003,
    "epochs": 4,
    "warmup_epochs": 1,
    "final_learning_rate_fraction": 0.01,
}


def rate_at(schedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_one_cycle_warms_up_then_decays_to_the_final_fraction_over_exactly_the_configured_steps():
    steps = 10
    schedule = learning_rate(ONE_CYCLE, steps)
    assert rate_at(schedule, 0) == pytest.approx(0.0003)
    assert rate_at(schedule, steps // 2) == pytest.approx(0.0003 + (0.003 - 0.0003) / 2)
    assert rate_at(schedule, steps) == pytest.approx(0.003)  # the peak, at the end of the warm-up epoch
    rates = [rate_at(schedule, s) for s in range(steps, 4 * steps + 1)]
    assert (np.diff(rates) < 0).all(), "the cosine only goes down"
    assert rates[-1] == pytest.approx(0.003 * 0.01)  # the last step of the last epoch
    assert rates[-2] > 0.003 * 0.01 * 1.01


def test_one_cycle_keeps_a_step_of_decay_when_the_warm_up_is_as_long_as_the_training():
    schedule = learning_rate({**ONE_CYCLE, "epochs": 1, "warmup_epochs": 1}, 5)
    assert rate_at(schedule, 4) == pytest.approx(0.003)
    assert rate_at(schedule, 5) == pytest.approx(0.003 * 0.01)


def test_plateau_starts_at_the_configured_constant_rate():
    assert learning_rate({**ONE_CYCLE, "schedule": "plateau", "learning_rate": 0.001}, 10) == 0.001


def test_unknown_schedule_is_an_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.schedule: unknown schedule 'linear'; known: one_cycle, plateau"):
        learning_rate({**ONE_CYCLE, "schedule": "linear"}, 10)


PLATEAU = {
    "schedule": "plateau",
    "learning_rate": 0.05,
    "epochs": 3,
    "batch_size": 16,
    "steps_per_execution": 1,
    "monitor": "val_loss",
    "early_stopping_patience": 5,
    "reduce_lr_factor": 0.5,
    "reduce_lr_patience": 3,
    "min_learning_rate": 1e-5,
}


def test_schedule_callbacks_adapt_only_the_plateau_schedule():
    stop, reduce = schedule_callbacks(PLATEAU)
    assert isinstance(stop, keras.callbacks.EarlyStopping) and stop.patience == 5 and stop.monitor == "val_loss"
    assert isinstance(reduce, keras.callbacks.ReduceLROnPlateau) and reduce.factor == 0.5 and reduce.min_lr == 1e-5
    assert schedule_callbacks({**PLATEAU, "schedule": "one_cycle"}) == []


def test_best_epoch_is_the_lowest_loss_or_the_highest_accuracy_first_of_equals():
    history = {"val_loss": [0.9, 0.4, 0.5, 0.4], "val_accuracy": [0.5, 0.8, 0.9, 0.9]}
    assert best_epoch(history, "val_loss") == 2
    assert best_epoch(history, "val_accuracy") == 3


@pytest.mark.parametrize("monitor", MONITORS)
def test_the_checkpoint_the_plateau_schedule_and_the_summary_agree_on_the_best_epoch(monitor, tmp_path):
    """Keras's callbacks are told the direction, not left to guess it from the name by their own rule."""
    mode = "max" if higher_is_better(monitor) else "min"
    callbacks = Progress.find(tmp_path, "a config").callbacks(monitor, started=0.0)
    (checkpoint,) = [c for c in callbacks if isinstance(c, keras.callbacks.ModelCheckpoint)]
    stop, reduce = schedule_callbacks({**PLATEAU, "monitor": monitor})
    assert checkpoint.mode == stop.mode == reduce.mode == mode
    assert best_epoch({monitor: [0.5, 0.2, 0.9]}, monitor) == (3 if mode == "max" else 2)


def test_fit_logs_every_epoch_and_leaves_the_best_epochs_weights_in_the_model(workdir):
    ds = synthetic_dataset(10, 96, 0, seed=3)
    train_set, val = validation_split(ds.x_train, ds.y_train, 1 / 3, seed=0)
    model, _ = build_training_model(SMALL_CNN, NO_AUGMENT, {"precision": "float32", "fused_batch_norm": True}, 10, 1)
    connect(tiny_config().tracking)
    progress = Progress.find(workdir / "fit_progress", "a config")
    with mlflow.start_run(run_name="fit") as run:
        progress.start(run.info.run_id)
        fitted = fit(model, train_set, val, PLATEAU, seed=1, progress=progress)
    assert fitted.epochs_fitted == 3
    assert set(fitted.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert all(len(values) == 3 for values in fitted.history.values())
    assert fitted.history["learning_rate"] == pytest.approx([0.05] * 3)
    assert fitted.seconds > 0
    # The seconds so far, kept at the last epoch's end for a resumed training to add to.
    assert 0 < read_json(workdir / "fit_progress" / "seconds.json")["seconds"] <= fitted.seconds
    assert (
        Progress.find(workdir / "fit_progress", "a config").seconds
        == read_json(workdir / "fit_progress" / "seconds.json")["seconds"]
    )
    val_loss = fitted.history["val_loss"]
    best = best_epoch(fitted.history, "val_loss")
    assert best < 3, f"the tiny setup should overfit, so that the last epoch is not the best: {val_loss}"
    loss, _ = model.evaluate(batches(*val, batch_size=16), verbose=0)
    assert loss == pytest.approx(val_loss[best - 1], rel=1e-5)
    logged = store(workdir).get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in logged] == [(epoch, pytest.approx(v)) for epoch, v in enumerate(val_loss, 1)]


# Export


@needs_bfloat16_kernels
def test_plain_float32_copy_keeps_the_trained_weights_in_plain_keras_layers():
    cfg = {"precision": "mixed_bfloat16", "fused_batch_norm": True}
    trained_model, _ = build_training_model(SMALL_CNN, NO_AUGMENT, cfg, 10, seed=1)
    trained_model.set_weights([w + 0.5 for w in trained_model.get_weights()])  # not what a fresh build draws
    plain = plain_float32_copy(trained_model, SMALL_CNN, NO_AUGMENT, 10)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    assert {layer.dtype_policy.name for layer in plain.layers} == {"float32"}
    assert all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), trained_model.get_weights(), strict=True))
    x = synthetic_dataset(10, 8, 0, seed=4).x_train.astype(np.float32)
    np.testing.assert_allclose(plain.predict(x, verbose=0), trained_model.predict(x, verbose=0), atol=0.02)
    assert keras.config.dtype_policy().name == "float32"


def test_training_summary_counts_epochs_and_images_per_second():
    fitted = Fit({"loss": [0.9, 0.5, 0.6], "val_loss": [0.7, 0.4, 0.45], "val_accuracy": [0.8, 0.9, 0.95]}, 2.04, 3)
    assert training_summary(fitted, "val_loss", 100, "float32", flops=1000) == {
        "epochs_run": 3,
        "flops": 900_000,  # 3 passes x 1,000 FLOPs x 100 images x 3 epochs
        "best_epoch": 2,
        "train_seconds": 2.0,
        "images_per_second": 147.1,  # 3 epochs of 100 images in 2.04 s
        "precision": "float32",
    }
    assert training_summary(fitted, "val_accuracy", 100, "float32", flops=1000)["best_epoch"] == 3
    # Resumed after the first epoch: 3 epochs in the history, 2 of them fitted in this process's 2.04 s.
    resumed = Fit(fitted.history, 2.04, 2)
    assert training_summary(resumed, "val_loss", 100, "float32", flops=1000)["images_per_second"] == 98.0
    assert training_summary(resumed, "val_loss", 100, "float32", flops=1000)["flops"] == 900_000  # every epoch
    # The earlier processes' 3.5 s, to their last completed epoch, count in the training's time, not in the rate.
    earlier = Fit(fitted.history, 2.04, 2, seconds_before=3.5)
    assert training_summary(earlier, "val_loss", 100, "float32", flops=1000)["train_seconds"] == 5.5
    assert training_summary(earlier, "val_loss", 100, "float32", flops=1000)["images_per_second"] == 98.0


def test_write_outputs_saves_the_model_the_history_and_augmented_examples(tmp_path):
    ds = numbered_dataset(30)
    data = TrainingData((ds.x_train, ds.y_train), (ds.x_train[:0], ds.y_train[:0]), DIGIT_NAMES, "numbered")
    model, _ = build_training_model(SMALL_CNN, NO_AUGMENT, {"precision": "float32", "fused_batch_norm": False}, 10, 1)
    summary = {"epochs_run": 1, "best_epoch": 1, "train_seconds": 0.5, "images_per_second": 60.0, "precision": "p"}
    history = {"loss": [0.5], "val_loss": [0.6]}
    write_outputs(tmp_path / "models", model, summary, history, data, NO_AUGMENT, seed=7)
    assert sorted(os.listdir(tmp_path / "models")) == ["augmented.npz", "history.json", "model.keras"]
    saved = keras.models.load_model(tmp_path / "models" / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), model.get_weights(), strict=True))
    assert read_class_names(tmp_path / "models" / "model.keras") == list(DIGIT_NAMES)
    written = json.loads((tmp_path / "models" / "history.json").read_text())
    assert written == {**summary, "class_names": list(DIGIT_NAMES), "history": history}
    with np.load(tmp_path / "models" / "augmented.npz") as z:
        pick = np.random.default_rng(7).choice(30, size=10, replace=False)
        np.testing.assert_array_equal(z["original"], ds.x_train[pick])
        np.testing.assert_array_equal(z["labels"], ds.y_train[pick])
        np.testing.assert_array_equal(z["augmented"], np.stack([ds.x_train[pick]] * 3))  # the `none` policy


# `train` in-process: one tiny training shared by the tests below.


@dataclass(frozen=True)
class Trained:
    folder: Path  # the working folder: data/prepared/, models/, mlruns/
    run_id: str
    client: MlflowClient
    output: str  # what it printed, stdout and stderr


@pytest.fixture(scope="module")
def trained(workdir) -> Trained:
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        mp.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")  # MLflow's 10 s outlasts a tiny training
        mp.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
        run_id = train(tiny_config(), "tiny run")
    return Trained(workdir, run_id, store(workdir), output.getvalue())


def test_train_says_what_it_did_in_its_own_words_and_mlflow_keeps_its_info_lines(trained):
    """MLflow's INFO lines (its system-metrics monitor, registering a model) are not the stage's to print."""
    assert "train: done in " in trained.output and "registered as handwriting-mnist/" in trained.output
    for mlflows in ("INFO mlflow", "system metrics", "Registered model", "Successfully registered", "Created version"):
        assert mlflows not in trained.output, trained.output


def test_train_finishes_a_run_with_the_config_as_params_and_the_training_as_tags(trained):
    run = trained.client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tiny run"
    assert run.data.params["train.epochs"] == "1" and run.data.params["model.name"] == "compact"
    assert run.data.params["seed"] == "42" and run.data.params["paths.models"] == "models"
    assert run.data.tags["dataset.train"] == "synthetic, 10 classes"
    assert int(run.data.tags["model.parameters"]) > 0
    assert run.data.tags["train.precision_used"] in ("float32", "mixed_bfloat16")
    config = Path(trained.client.download_artifacts(trained.run_id, "config.yaml")).read_text()
    assert "epochs: 1" in config


def test_train_logs_every_epoch_at_its_step_and_a_summary_of_the_training(trained):
    run = trained.client.get_run(trained.run_id)
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert [m.step for m in trained.client.get_metric_history(trained.run_id, metric)] == [1], metric
    assert run.data.metrics["train.epochs_run"] == 1 and run.data.metrics["train.best_epoch"] == 1
    assert run.data.metrics["train.train_seconds"] >= 0 and run.data.metrics["train.images_per_second"] > 0
    n_train = 270  # tiny_workdir's 300 training images less the validation tenth
    cfg = tiny_config()
    flops = forward_flops(build_model(cfg.model, cfg.augment, 10))
    assert run.data.metrics["model.forward_flops"] == flops > 0
    assert run.data.metrics["train.flops"] == 3 * flops * n_train * 1


def test_train_records_what_the_machine_did_while_it_trained(trained):
    """MLflow's system metrics: a slow run on a busy machine can be told from a slow network."""
    metrics = trained.client.get_run(trained.run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
    history = trained.client.get_metric_history(trained.run_id, "system/cpu_utilization_percentage")
    assert len(history) >= 2 and all(0 <= m.value <= 100 for m in history)


def test_train_logs_the_model_with_its_class_names(trained):
    run = trained.client.get_run(trained.run_id)
    (output,) = run.outputs.model_outputs
    logged = trained.client.get_logged_model(output.model_id)
    assert logged.name == "model" and logged.source_run_id == trained.run_id
    files = {a.path for a in trained.client.list_logged_model_artifacts(output.model_id)}
    assert {"MLmodel", "requirements.txt"} <= files
    mlmodel = Path(mlflow.artifacts.download_artifacts(f"{logged.artifact_location}/MLmodel")).read_text()
    assert "class_names" in mlmodel and "'9'" in mlmodel


def dataset_inputs(run) -> dict[str, mlflow.entities.Dataset]:
    """A run's datasets by the context (split) they were logged in; every context once."""
    contexts = [{t.key: t.value for t in i.tags}["mlflow.data.context"] for i in run.inputs.dataset_inputs]
    assert len(contexts) == len(set(contexts)), contexts
    return dict(zip(contexts, (i.dataset for i in run.inputs.dataset_inputs)))


def test_train_logs_the_training_and_validation_parts_as_the_runs_datasets(trained):
    cfg = tiny_config()
    data = prepare_data(trained.folder / "data/prepared/mnist.npz", None, cfg.train.validation_split, cfg.seed)
    inputs = dataset_inputs(trained.client.get_run(trained.run_id))
    assert set(inputs) == {"training", "validation"}
    for context, (x, y) in (("training", data.train), ("validation", data.val)):
        dataset = inputs[context]
        assert dataset.name == "mnist" and dataset.digest == runs.content_digest(x, y), context
        assert dataset.source_type == "local" and json.loads(dataset.source) == {"uri": "data/prepared/mnist.npz"}
        assert json.loads(dataset.profile)["features_shape"] == [len(x), 28, 28]
    assert inputs["training"].digest != inputs["validation"].digest


def test_the_datasets_logged_again_in_the_same_run_are_not_added_twice(trained):
    """As when an interrupted training resumes in its run: MLflow links a dataset (name, digest) to a run once."""
    cfg = tiny_config()
    data = prepare_data(trained.folder / "data/prepared/mnist.npz", None, cfg.train.validation_split, cfg.seed)
    connect(cfg.tracking)
    with mlflow.start_run(run_id=trained.run_id):
        runs.log_dataset("mnist", Path("data/prepared/mnist.npz"), *data.train, "training")
        runs.log_dataset("mnist", Path("data/prepared/mnist.npz"), *data.val, "validation")
    assert len(trained.client.get_run(trained.run_id).inputs.dataset_inputs) == 2


def test_train_registers_the_model_as_a_version_of_the_datasets_model(trained):
    (version,) = trained.client.search_model_versions(f"run_id = '{trained.run_id}'")
    assert version.name == "handwriting-mnist" and version.run_id == trained.run_id
    run = trained.client.get_run(trained.run_id)
    assert version.source == f"models:/{run.outputs.model_outputs[0].model_id}"  # the model this run logged
    assert run.data.tags["model.registered"] == f"handwriting-mnist/{version.version}"


def test_train_writes_the_model_its_history_augmented_examples_and_the_run(trained):
    models = trained.folder / "models"
    assert sorted(os.listdir(models)) == ["augmented.npz", "history.json", "model.keras", "run.json"]
    probs = keras.models.load_model(models / "model.keras").predict(np.zeros((2, 28, 28), np.float32), verbose=0)
    assert probs.shape == (2, 10)
    history = json.loads((models / "history.json").read_text())
    assert history["class_names"] == [str(d) for d in range(10)]
    assert set(history["history"]) == {"accuracy", "loss", "val_accuracy", "val_loss", "learning_rate"}
    assert history["epochs_run"] == 1 and history["best_epoch"] == 1
    assert history["precision"] in ("float32", "mixed_bfloat16")
    with np.load(models / "augmented.npz") as z:
        assert z["original"].shape == (10, 28, 28) and z["augmented"].shape == (3, 10, 28, 28)
    ref = json.loads((models / "run.json").read_text())
    assert ref["run_id"] == trained.run_id
    assert ref["experiment_id"] == trained.client.get_run(trained.run_id).info.experiment_id
    assert ref["model_uri"] == f"models:/{trained.client.get_run(trained.run_id).outputs.model_outputs[0].model_id}"


def test_a_failure_inside_train_leaves_a_failed_run(workdir):
    cfg = tiny_config(["data=emnist_balanced"])  # not prepared in the folder
    with pytest.raises(FileNotFoundError, match=r"emnist_balanced\.npz: prepared dataset not found"):
        train(cfg, "no data")
    experiment = store(workdir).get_experiment_by_name(cfg.tracking.experiment)
    (run,) = store(workdir).search_runs([experiment.experiment_id], "attributes.run_name = 'no data'")
    assert run.info.status == "FAILED"
    assert run.data.params["data.name"] == "emnist_balanced"


def written_training_list(folder: Path, positions: list[int], rows_shift: int = 0) -> Path:
    """A label-issues list of the prepared training images at `positions`, all flagged, as kfold_join writes it."""
    ds = load_dataset(folder / "data/prepared/mnist.npz")
    probs = np.full((len(ds.y_train), 10), 0.1)
    n = len(positions)
    issues = LabelIssues(np.array(positions), np.zeros(n), np.zeros(n, int), np.ones(n, bool))
    path = folder / "mnist_train.csv"
    path.write_text(issues_csv(issues, probs, ds.y_train, ds.train_rows + rows_shift, ds.class_names), "utf-8")
    return path


@pytest.mark.slow  # a second tiny training
def test_train_without_a_lists_images_tags_how_many_and_keeps_the_list(workdir):
    listed = written_training_list(workdir, [0, 3, 7])
    cfg = tiny_config([f"data.exclude_label_issues={listed}", "data.train_limit=100"])
    client = store(workdir)
    run = client.get_run(train(cfg, "without three"))
    assert run.info.status == "FINISHED" and run.data.tags["data.excluded_images"] == "3"
    (kept,) = [i.dataset for i in run.inputs.dataset_inputs if i.tags[0].value == "training"]
    assert json.loads(kept.profile)["targets_shape"] == [97 - round(97 * cfg.train.validation_split)]
    assert (
        Path(client.download_artifacts(run.info.run_id, "excluded/mnist_train.csv")).read_text() == listed.read_text()
    )


def test_train_refuses_a_list_of_another_training_set_in_a_failed_run(workdir):
    listed = written_training_list(workdir, [1], rows_shift=10**6)  # rows no training image has
    with pytest.raises(ExclusionError, match=r"mnist_train\.csv: row 100000\d is not in the training set"):
        train(tiny_config([f"data.exclude_label_issues={listed}"]), "another list")
    cfg = tiny_config()
    experiment = store(workdir).get_experiment_by_name(cfg.tracking.experiment)
    (run,) = store(workdir).search_runs([experiment.experiment_id], "attributes.run_name = 'another list'")
    assert run.info.status == "FAILED"
