"""Stage `label_issues`: which labels of each test set are likely wrong, from the probabilities evaluate wrote.

The probabilities are out-of-sample (no test image was trained on), which is what cleanlab needs. Per test set: a
review queue, label_issues/<test set>.csv (the label_issues.review images of lowest label quality score, most likely
wrong first, by their row in the official file, each with cleanlab's `flagged` verdict) and label_issues/<test
set>.pdf (the first label_issues.max_shown of them drawn), which report copies into reports/<test set>/ beside the
test set's other files; per test set to metrics/label_issues.json (a DVC metric) the flagged count, the errors among
them, the accuracy on the images not flagged and the errors the queue holds; all of it logged to the model's MLflow
run. A stage of its own rather than part of report: a report setting changed does not rerun
cleanlab, and the counts are a metric of their own. Its files are not written into reports/ directly because that
folder is the report stage's output, and DVC lets no two stages write into one.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from omegaconf import DictConfig

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import reports_user_errors
from pipeline.core.files import write_json
from pipeline.core.interrupt import stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.data.datasets import display, load_dataset, prepared_path
from pipeline.figures.label_review import Findings, findings, issues_line, write_findings
from pipeline.scoring.label_quality import COUNTS_FILE, ProbabilitiesError, test_set_issues
from pipeline.tracking import runs


def read_predictions(predictions_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """predictions/<test set>.npz as evaluate wrote it: the probabilities, the given labels, the file's name."""
    path = predictions_dir / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no predictions for test set {name} — run the evaluate stage first (`dvc repro`)"
        )
    with np.load(path) as z:
        if not {"probs", "y_true"} <= set(z.files):
            raise ProbabilitiesError(f"{path}: no `probs` and `y_true` arrays — run the evaluate stage again")
        return z["probs"], z["y_true"], str(path)


def read_test_set(name: str, cfg: DictConfig) -> Findings:
    """Its predictions and prepared images, checked, and its review queue."""
    probs, labels, source = read_predictions(Path(cfg.paths.predictions), name)
    ds = load_dataset(prepared_path(cfg.paths.prepared, name))
    issues = test_set_issues(name, ds, probs, labels, source, cfg.label_issues.review)
    n = len(labels)
    return findings(
        name, f"Label review queue: {display(name)}", f"Test set: {ds.source}", ds.x_test[:n], ds.test_rows[:n],
        ds.test_file, ds.class_names, probs, labels, issues,
    )  # fmt: skip


def find_issues(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Every configured test set's review queue, written and logged to the model's run; returns the counts."""
    folder = Path(cfg.paths.label_issues)
    with runs.reopen_run(Path(cfg.paths.models) / "run.json", cfg.tracking, "label_issues"):
        # Every test set is read and checked before anything is written: bad input leaves no new file.
        test_sets = [read_test_set(name, cfg) for name in cfg.data.test_sets]
        for t in test_sets:
            for path in write_findings(t, folder, cfg.label_issues.max_shown, cfg.label_issues.per_page):
                mlflow.log_artifact(str(path), "label_issues")
            mlflow.log_metrics({f"label_issues.{t.name}.{k}": v for k, v in t.counts.items() if k != "images"})
            print(issues_line(t, folder), flush=True)
        results = {t.name: t.counts for t in test_sets}
        metrics_file = Path(cfg.paths.metrics) / COUNTS_FILE
        write_json(metrics_file, results)
        mlflow.log_artifact(str(metrics_file), "metrics")
    return results


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> None:
    validate(cfg)
    find_issues(cfg)


if __name__ == "__main__":
    skip_final_collection()
    stop_on_signals(main, "label_issues")
