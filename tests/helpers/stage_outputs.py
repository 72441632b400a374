"""What the stages leave behind, made without running them (an untrained model in train's place) or read back as
the tests check it."""

from __future__ import annotations

from pathlib import Path

import keras
import mlflow
from omegaconf import DictConfig

from pipeline.core.files import read_json, write_json
from pipeline.data.datasets import load_dataset, prepared_path
from pipeline.modeling.model_file import save_with_class_names
from pipeline.modeling.models import build_model
from pipeline.tracking import runs, store
from pipeline.train import write_augmented_examples

# The files report writes per test set: the summary's pages first, then its tables.
TEST_SET_FILES = [
    "confusion.png",
    "reliability.png",
    "confused_pairs.png",
    "correct.png",
    "incorrect.png",
    "per_class.csv",
    "classification_report.txt",
    "confused_pairs.csv",
    "label_issues.csv",  # the label_issues stage's, copied
    "label_issues.pdf",
]


def read_scores(metrics_dir: str | Path) -> dict[str, dict[str, float]]:
    """Every score per test set, from the two files evaluate writes them to."""
    headline = read_json(Path(metrics_dir) / "test.json")
    details = read_json(Path(metrics_dir) / "test_details.json")
    assert set(headline) == set(details)
    return {name: {**headline[name], **details[name]} for name in headline}


def start_run_ref(models_dir: Path, cfg: DictConfig) -> str:
    """A new MLflow run, closed, with its reference in models_dir/run.json as train leaves it."""
    store.connect(cfg.tracking)
    with mlflow.start_run(run_name="untrained") as run:
        runs.save_run_ref(models_dir / "run.json", run.info.run_id, run.info.experiment_id)
    return run.info.run_id


def write_untrained_run(cfg: DictConfig) -> str:
    """What the train stage writes to models/, without training: the configured architecture with its initial
    weights and its class names, a history.json with train's keys, augmented.npz and run.json. Returns the run's id."""
    ds = load_dataset(prepared_path(cfg.paths.prepared, cfg.data.name))
    models_dir = Path(cfg.paths.models)
    models_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    save_with_class_names(
        build_model(cfg.model, cfg.augment, ds.num_classes), models_dir / "model.keras", ds.class_names
    )
    history = {
        "loss": [2.0, 1.2],
        "accuracy": [0.3, 0.6],
        "val_loss": [1.5, 1.1],
        "val_accuracy": [0.5, 0.65],
        "learning_rate": [1e-3, 1e-4],
    }
    summary = {"epochs_run": 2, "best_epoch": 2, "train_seconds": 1.5, "images_per_second": 400.0}
    record = {**summary, "precision": "float32", "class_names": list(ds.class_names), "history": history}
    write_json(models_dir / "history.json", record)
    write_augmented_examples(models_dir / "augmented.npz", (ds.x_train, ds.y_train), cfg.augment, cfg.seed)
    return start_run_ref(models_dir, cfg)
