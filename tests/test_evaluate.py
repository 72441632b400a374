"""The evaluate stage in-process on tiny synthetic data, with an untrained model standing in for a trained one."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from omegaconf import DictConfig

from pipeline.core.files import read_json, write_json
from pipeline.data.datasets import DIGIT_NAMES, load_dataset, prepared_path
from pipeline.evaluate import (
    evaluate,
    load_test_set,
    load_trained_model,
    log_scores,
    predict_probabilities,
    split_scores,
    write_scores,
)
from pipeline.modeling.model_file import ModelFileError, save_with_class_names
from pipeline.tracking import store
from pipeline.tracking.runs import content_digest
from tests.helpers.configs import tiny_config
from tests.helpers.repos import REPO
from tests.helpers.stage_outputs import read_scores, start_run_ref, write_untrained_run
from tests.helpers.synthetic import tiny_workdir

SCORES = {
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "loss",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "ece",
    "images",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, empty_store) -> tuple[DictConfig, str]:
    """A working folder (the current directory) as train leaves it, shared by this module's tests: the `tiny`
    data, an untrained model and its run. Returns the fast config and the run's id."""
    with pytest.MonkeyPatch.context() as mp, tiny_workdir(tmp_path_factory.mktemp("trained"), mp, empty_store) as cfg:
        yield cfg, write_untrained_run(cfg)


def test_load_test_set_checks_the_model_classes(trained):
    cfg, _ = trained
    assert load_test_set(cfg.paths.prepared, "emnist_digits", list(DIGIT_NAMES)).source == "synthetic, 10 classes"
    with pytest.raises(ValueError, match="test set emnist_digits: classes .* differ from the model's"):
        load_test_set(cfg.paths.prepared, "emnist_digits", list("abcdefghij"))


def test_loaded_model_gives_a_probability_per_class(trained):
    cfg, _ = trained
    model, class_names = load_trained_model(Path(cfg.paths.models), fused_batch_norm=True)
    assert class_names == list(DIGIT_NAMES)
    x = load_dataset(prepared_path(cfg.paths.prepared, "mnist")).x_test[:5]
    probs = predict_probabilities(model, x, batch_size=2)
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_the_models_classes_are_the_ones_its_file_carries_not_history_jsons(trained, tmp_path):
    """models/history.json records the classes too, but a model file copied in with other names keeps its own."""
    cfg, _ = trained
    model = keras.models.load_model(Path(cfg.paths.models) / "model.keras")
    save_with_class_names(model, tmp_path / "model.keras", list("abcdefghij"))
    write_json(tmp_path / "history.json", {"class_names": list(DIGIT_NAMES)})
    assert load_trained_model(tmp_path, fused_batch_norm=False)[1] == list("abcdefghij")


def test_a_damaged_model_file_says_how_to_get_it_back_not_predicts_advice(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(ModelFileError) as refused:
        load_trained_model(tmp_path, fused_batch_norm=False)
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'model.keras'}: not a .keras model file") and "--model" not in message
    assert message.endswith("— restore it with `dvc checkout`, or train it again with `dvc repro`")


def test_log_scores_logs_every_score_but_the_image_count(trained):
    cfg, _ = trained
    store.connect(cfg.tracking)
    with mlflow.start_run() as run:
        log_scores("mnist", {"accuracy": 0.5, "loss": 1.25, "images": 100}, "synthetic")
    logged = mlflow.get_run(run.info.run_id).data
    assert logged.metrics == {"test.mnist.accuracy": 0.5, "test.mnist.loss": 1.25}
    assert logged.tags["dataset.test.mnist"] == "synthetic"


def test_split_scores_puts_accuracy_and_loss_in_the_headline_and_the_rest_in_the_details():
    results = {
        "mnist": {"accuracy": 0.99, "accuracy_ci_low": 0.98, "loss": 0.03, "ece": 0.01, "images": 100},
        "emnist_balanced": {"accuracy": 0.9, "loss": 0.3, "macro_f1": 0.89, "top5_accuracy": 0.99, "images": 50},
    }
    headline, details = split_scores(results)
    assert headline == {"mnist": {"accuracy": 0.99, "loss": 0.03}, "emnist_balanced": {"accuracy": 0.9, "loss": 0.3}}
    assert details == {
        "mnist": {"accuracy_ci_low": 0.98, "ece": 0.01, "images": 100},
        "emnist_balanced": {"macro_f1": 0.89, "top5_accuracy": 0.99, "images": 50},
    }


def test_write_scores_writes_the_two_files_that_make_up_the_scores(tmp_path):
    results = {"mnist": {"accuracy": 0.5, "loss": 1.25, "macro_f1": 0.4, "images": 8}}
    write_scores(tmp_path, results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.json", "test_details.json"]
    assert read_json(tmp_path / "test.json") == {"mnist": {"accuracy": 0.5, "loss": 1.25}}
    assert read_json(tmp_path / "test_details.json") == {"mnist": {"macro_f1": 0.4, "images": 8}}


def test_the_committed_reference_scores_are_what_evaluate_writes(tmp_path):
    """metrics/ of the reference run, read back and written again, comes out byte for byte: the committed files are
    split as evaluate splits them now (after a change of the split, rerun the reference or rewrite them)."""
    committed = REPO / "metrics"
    write_scores(tmp_path, read_scores(committed))
    for name in ("test.json", "test_details.json"):
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name


def test_evaluate_writes_predictions_and_metrics_and_logs_them_to_the_run(trained):
    cfg, run_id = trained
    results = evaluate(cfg)

    assert set(results) == {"mnist", "emnist_digits"}
    assert read_scores("metrics") == results
    assert all(set(scores) == {"accuracy", "loss"} for scores in read_json("metrics/test.json").values())
    for name in ("mnist", "emnist_digits"):
        assert set(results[name]) == SCORES and results[name]["images"] == 100
        with np.load(f"predictions/{name}.npz") as z:
            assert z["probs"].shape == (100, 10)
            np.testing.assert_array_equal(z["y_true"], load_dataset(f"data/prepared/{name}.npz").y_test)
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {
        f"test.{name}.{score}": results[name][score] for name in results for score in SCORES - {"images"}
    }
    assert run.data.tags["dataset.test.emnist_digits"] == "synthetic, 10 classes"
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"mnist", "emnist_digits"}
    for name, logged in inputs.items():
        test_set = load_dataset(f"data/prepared/{name}.npz")
        assert [(t.key, t.value) for t in logged.tags] == [("mlflow.data.context", "test")]
        assert logged.dataset.digest == content_digest(test_set.x_test, test_set.y_test), name
        assert json.loads(logged.dataset.source) == {"uri": f"data/prepared/{name}.npz"}


@pytest.mark.usefixtures("trained")
def test_a_failed_evaluation_marks_the_run_failed():
    """No model where the run reference says: the evaluation fails inside the run, and writes no metrics."""
    failing = tiny_config(["paths.models=no_model", "paths.predictions=no_predictions", "paths.metrics=no_metrics"])
    run_id = start_run_ref(Path("no_model"), failing)
    with pytest.raises(FileNotFoundError, match="model.keras: no trained model"):
        evaluate(failing)
    assert mlflow.get_run(run_id).info.status == "FAILED"
    assert not Path("no_metrics").exists()
