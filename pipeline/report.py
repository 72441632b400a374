"""Stage `report`: figures from what train and evaluate wrote, with no retraining or re-predicting.

Writes reports/curves.png and one misclassification PDF per test set, and logs them to the model's MLflow run.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import mlflow
import numpy as np
from omegaconf import DictConfig

from pipeline import metrics, plots, tracking
from pipeline.datasets import load_dataset, prepared_path
from pipeline.files import read_json


def pdf_name(test_set: str, train_set: str) -> str:
    """The training set's own test set gets `misclassified.pdf`; others are named by their dataset family."""
    if test_set == train_set:
        return "misclassified.pdf"
    return f"misclassified_{test_set.split('_')[0].upper()}.pdf"


def report(cfg: DictConfig) -> None:
    """Curves and misclassification PDFs from the stored history and predictions, logged to the model's run."""
    reports = Path(cfg.paths.reports)
    models_dir = Path(cfg.paths.models)
    record = read_json(models_dir / "history.json")
    with tracking.reopen_run(models_dir / "run.json", cfg.tracking) as run:
        title = f"{run.info.run_name}"
        curves = reports / "curves.png"
        plots.save_figure(plots.training_curves(record["history"], title), curves)
        mlflow.log_artifact(str(curves), "reports")
        for name in cfg.data.test_sets:
            ds = load_dataset(prepared_path(cfg.paths.prepared, name))
            with np.load(Path(cfg.paths.predictions) / f"{name}.npz") as z:
                probs, y_true = z["probs"], z["y_true"]
            order = metrics.misclassified_by_confidence(probs, y_true)
            shown = order[: cfg.report.max_misclassified]
            summary = (
                f"Test set: {ds.source}\n"
                f"{len(order):,} of {len(y_true):,} images misclassified — accuracy "
                f"{metrics.accuracy(probs, y_true):.2%}\n"
                f"Showing the {len(shown):,} most confident mistakes, most confident first."
            )
            out = reports / pdf_name(name, cfg.data.name)
            plots.misclassified_pdf(out, ds.x_test, probs, y_true, shown, ds.class_names,
                                    f"Misclassified: {title}", summary, cfg.report.per_page)
            mlflow.log_artifact(str(out), "reports")
            print(f"report: wrote {out} ({len(shown)} of {len(order)} mistakes)", flush=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    report(cfg)


if __name__ == "__main__":
    main()
