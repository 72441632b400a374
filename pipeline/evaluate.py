"""Stage `evaluate`: the trained model on every test set the config names.

Writes predictions/<test set>.npz (probabilities and true labels: for the report stage and, logged to the run, for a
sweep's paired tests); per test set, accuracy and loss to metrics/test.json (a DVC metric: `dvc exp show` spreads
each of its numbers into a column) and the other scores to metrics/test_details.json (a plain output, which it
does not); and logs every score, and each test set as a dataset (context `test`), to the model's MLflow run. The
per-class tables are the report stage's (plots/per_class/, reports/): as metrics they would be one `dvc exp show`
column per class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import mlflow
import numpy as np
from omegaconf import DictConfig

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import reports_user_errors
from pipeline.core.files import write_json, write_npz
from pipeline.core.interrupt import stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.data.datasets import Dataset, DatasetError, load_dataset, prepared_path
from pipeline.modeling.batches import batches
from pipeline.modeling.fused import fused_copy
from pipeline.modeling.model_file import load_with_class_names
from pipeline.scoring import metrics
from pipeline.tracking import runs


def check_classes(ds: Dataset, model_classes: Sequence[str], name: str) -> None:
    if tuple(model_classes) != ds.class_names:
        raise DatasetError(
            f"test set {name}: classes {list(ds.class_names)} differ from the model's {list(model_classes)} "
            "— data.test_sets must name datasets with the classes of data.name"
        )


RESTORE_OR_RETRAIN = "restore it with `dvc checkout`, or train it again with `dvc repro`"


def load_trained_model(models_dir: Path, fused_batch_norm: bool) -> tuple[keras.Model, list[str]]:
    """The trained model, and the classes it was trained on, which the model file carries."""
    path = models_dir / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained model — run the train stage first (`dvc repro`)")
    model, class_names = load_with_class_names(path, RESTORE_OR_RETRAIN)
    if fused_batch_norm:
        # The same weights through TensorFlow's fused inference kernel, which its graph optimiser merges with the
        # convolution before it: predictions agree with the plain model's to ~1e-6 (tests/modeling/test_fused.py).
        model = fused_copy(model)
    return model, class_names


def load_test_set(prepared_dir: str | Path, name: str, model_classes: Sequence[str]) -> Dataset:
    """The prepared dataset whose test split is test set `name`, checked to have the model's classes."""
    ds = load_dataset(prepared_path(prepared_dir, name))
    check_classes(ds, model_classes, name)
    return ds


def predict_probabilities(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's probability of every class, one row per image."""
    return model.predict(batches(x, batch_size=batch_size), verbose=0)


HEADLINE_SCORES = ("accuracy", "loss")  # metrics/test.json; every other score goes to metrics/test_details.json


def split_scores(
    results: Mapping[str, Mapping[str, float]],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Each test set's scores in two: the headline (HEADLINE_SCORES) and all the others. `dvc exp show` gives every
    number of a DVC metrics file a column, and ~9 scores per test set left no room in a terminal for the two a
    reader compares runs by; the others stay one `dvc metrics show metrics/test_details.json` away."""
    headline = {name: {k: v for k, v in s.items() if k in HEADLINE_SCORES} for name, s in results.items()}
    details = {name: {k: v for k, v in s.items() if k not in HEADLINE_SCORES} for name, s in results.items()}
    return headline, details


def write_scores(metrics_dir: Path, results: Mapping[str, Mapping[str, float]]) -> None:
    """metrics/test.json (the headline, a DVC metric) and metrics/test_details.json (the rest, a plain output)."""
    headline, details = split_scores(results)
    write_json(metrics_dir / "test.json", headline)
    write_json(metrics_dir / "test_details.json", details)


def log_scores(name: str, scores: dict[str, float], source: str) -> None:
    """To the active MLflow run: the scores as `test.<test set>.<score>` (the image count is not a score), and
    where the test set came from as a tag."""
    mlflow.log_metrics({f"test.{name}.{k}": v for k, v in scores.items() if k != "images"})
    mlflow.set_tag(f"dataset.test.{name}", source)


def evaluate(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Score the trained model on every configured test set; log every score to its run and write them, split into
    the headline and the details, to metrics/."""
    models_dir = Path(cfg.paths.models)
    results = {}
    with runs.reopen_run(models_dir / "run.json", cfg.tracking, "evaluate"):
        # Everything that can fail happens inside the run, so that a failure marks it FAILED.
        model, class_names = load_trained_model(models_dir, cfg.evaluate.fused_batch_norm)
        for name in cfg.data.test_sets:
            ds = load_test_set(cfg.paths.prepared, name, class_names)
            x, y = ds.x_test[: cfg.evaluate.limit], ds.y_test[: cfg.evaluate.limit]
            runs.log_dataset(name, prepared_path(cfg.paths.prepared, name), x, y, "test")
            probs = predict_probabilities(model, x, cfg.evaluate.batch_size)
            results[name] = metrics.summary_scores(probs, y)
            predictions = Path(cfg.paths.predictions) / f"{name}.npz"
            write_npz(predictions, probs=probs, y_true=y)
            mlflow.log_artifact(str(predictions), "predictions")  # a sweep's paired tests read them (sweeps/results.py)
            log_scores(name, results[name], ds.source)
            print(
                f"evaluate: {name}: accuracy {results[name]['accuracy']:.4f}, loss {results[name]['loss']:.4f} "
                f"on {len(y)} images ({ds.source})",
                flush=True,
            )
        write_scores(Path(cfg.paths.metrics), results)
    return results


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> None:
    validate(cfg)
    evaluate(cfg)


if __name__ == "__main__":
    skip_final_collection()
    stop_on_signals(main, "evaluate")
