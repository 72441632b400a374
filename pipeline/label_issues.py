"""Stage `label_issues`: which labels of each test set are likely wrong, from the probabilities evaluate wrote.

The probabilities are out-of-sample (no test image was trained on), which is what cleanlab's confident learning
needs. Per test set: label_issues/<test set>.csv (every flagged image, most likely wrong first, by its row in the
official file) and label_issues/<test set>.pdf (the first label_issues.max_shown of them drawn), which report copies
into reports/<test set>/ beside the test set's other files; per test set to metrics/label_issues.json (a DVC
metric) the flagged count, the errors among them and the accuracy on the images not flagged; all of it logged to the
model's MLflow run. A stage of its own rather than part of report: a report setting changed does not rerun
cleanlab, and the counts are a metric of their own. Its files are not written into reports/ directly because that
folder is the report stage's output, and DVC lets no two stages write into one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from omegaconf import DictConfig

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import reports_user_errors
from pipeline.core.files import atomic_path, write_json
from pipeline.core.interrupt import stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.data.datasets import Dataset, display, load_dataset, prepared_path
from pipeline.figures import plots
from pipeline.scoring.label_quality import (
    COUNTS_FILE,
    LabelIssues,
    ProbabilitiesError,
    check_probabilities,
    found_files,
    issue_counts,
    issues_csv,
    label_issues,
)
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


def checked_issues(name: str, ds: Dataset, probs: np.ndarray, labels: np.ndarray, source: str) -> LabelIssues:
    """The test set's label issues, once its predictions are checked against it: evaluate scored the first
    len(labels) images (evaluate.limit), with the labels of the prepared file."""
    check_probabilities(probs, labels, ds.num_classes, source)
    if len(labels) > len(ds.y_test) or not np.array_equal(labels, ds.y_test[: len(labels)]):
        raise ProbabilitiesError(
            f"{source}: its labels are not those of test set {name}'s first {len(labels)} images — the prepared "
            "data changed since evaluate ran: run `dvc repro`"
        )
    return label_issues(probs, labels)


@dataclass(frozen=True)
class Findings:
    """One set of images' label issues with what writing them needs: a test set's here, the training set's in
    pipeline/kfold_join.py."""

    name: str  # the files': label_issues/<name>.csv and .pdf
    title: str  # the PDF's
    described: str  # the PDF's first line: `Test set: <where it came from>`
    images: np.ndarray  # the scored images, in the order of `probs`
    rows: np.ndarray  # each one's row in the official file
    official_file: str
    class_names: tuple[str, ...]
    probs: np.ndarray
    labels: np.ndarray
    issues: LabelIssues
    counts: dict[str, float]


def findings(
    name: str,
    title: str,
    described: str,
    images: np.ndarray,
    rows: np.ndarray,
    official_file: str,
    class_names: tuple[str, ...],
    probs: np.ndarray,
    labels: np.ndarray,
    issues: LabelIssues,
) -> Findings:
    """The label issues of checked probabilities, with their counts."""
    counts = issue_counts(issues, probs, labels)
    return Findings(name, title, described, images, rows, official_file, class_names, probs, labels, issues, counts)


def read_test_set(name: str, cfg: DictConfig) -> Findings:
    """Its predictions and prepared images, checked, and cleanlab's answer on them."""
    probs, labels, source = read_predictions(Path(cfg.paths.predictions), name)
    ds = load_dataset(prepared_path(cfg.paths.prepared, name))
    issues = checked_issues(name, ds, probs, labels, source)
    n = len(labels)
    return findings(
        name, f"Likely label errors: {display(name)}", f"Test set: {ds.source}", ds.x_test[:n], ds.test_rows[:n],
        ds.test_file, ds.class_names, probs, labels, issues,
    )  # fmt: skip


def summary_text(t: Findings, shown: int) -> str:
    """The first page's lines under the title of the PDF."""
    c = t.counts
    return (
        f"{t.described}\n"
        f"{c['flagged']:,} of {c['images']:,} labels flagged as likely wrong (cleanlab), "
        f"{c['flagged_errors']:,} of them among the model's {c['errors']:,} errors\n"
        f"Showing {shown:,}, most likely wrong first; #: the image's row in {t.official_file}"
    )


def write_findings(t: Findings, folder: Path, max_shown: int, per_page: int) -> list[Path]:
    """<name>.csv and <name>.pdf in `folder`; returns their paths."""
    csv_path, pdf_path = found_files(folder, t.name)
    with atomic_path(csv_path) as tmp:
        tmp.write_text(issues_csv(t.issues, t.probs, t.labels, t.rows, t.class_names), "utf-8")
    shown = t.issues.positions[:max_shown]
    plots.label_issues_pdf(
        pdf_path,
        t.images[shown],
        t.probs[shown],
        t.labels[shown],
        t.rows[shown],
        t.issues.scores[: len(shown)],
        t.class_names,
        t.title,
        summary_text(t, len(shown)),
        per_page,
    )
    return [csv_path, pdf_path]


def issues_line(t: Findings, folder: Path) -> str:
    """What the stage prints of one set of images."""
    c = t.counts
    return (
        f"label_issues: {t.name}: {c['flagged']} of {c['images']} labels flagged, {c['flagged_errors']} "
        f"of them among the {c['errors']} errors; wrote {folder}/{t.name}.csv and .pdf"
    )


def find_issues(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Every configured test set's label issues, written and logged to the model's run; returns the counts."""
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
