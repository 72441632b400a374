"""Stage `report`: every figure and table, from what train and evaluate wrote — no retraining, no re-predicting.

Per run: reports/summary.pdf (read first), curves, 40 sample training images, 10 training images as augmentation
changed them in training, the training class distribution.
Per test set (reports/<test set>/): confusion matrices, reliability diagram, most confused pairs, grids of
correct and incorrect predictions, the classification report, the likely label errors the label_issues stage found
(copied here, so that every file of a run is in reports/, and in the run's reports/); and the misclassification PDF
in reports/. The summary says how many of each test set's errors are flagged as label errors.
DVC plot data goes to plots/ (history.csv; confusion/ and per_class/, a CSV per test set), which is committed
with dvc.lock and metrics/ so that `dvc plots diff` shows how a change moved them. Everything is logged to the model's run.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from omegaconf import DictConfig

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import reports_user_errors
from pipeline.core.files import atomic_path, read_json
from pipeline.core.interrupt import stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.core.workers import second_process
from pipeline.data.datasets import Dataset, display, load_dataset, prepared_path
from pipeline.figures import plots
from pipeline.figures.report_pages import (
    MisclassifiedPdf,
    Page,
    augmented_grid,
    config_line,
    confused_pairs_figure,
    correct_grid,
    generalisation_note,
    headline_table,
    incorrect_grid,
    label_issue_note,
    reliability_figure,
    sample_grid,
    write_misclassified_pdf,
    write_summary_pdf,
)
from pipeline.scoring import metrics
from pipeline.scoring.label_quality import COUNTS_FILE, found_files
from pipeline.scoring.predictions import Predictions
from pipeline.scoring.tables import classification_report, history_rows, per_class_rows, to_csv
from pipeline.tracking import runs

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def report(cfg: DictConfig) -> None:
    """All report files for the trained model, then the summary PDF; logged to the model's MLflow run."""
    reports = Path(cfg.paths.reports)
    with (
        runs.reopen_run(Path(cfg.paths.models) / "run.json", cfg.tracking, "report") as run,
        second_process() as writer,
    ):
        # Everything that can fail happens inside the run, so that a failure marks it FAILED. The misclassification
        # PDFs are most of the report's work: `writer`, a second process, draws them while this one does the rest.
        training = read_training(cfg)
        flagged = read_label_issue_counts(cfg)
        write_text(Path(cfg.paths.plots) / "history.csv", to_csv(history_rows(training.record["history"])))
        sections = [
            report_test_set(name, training, flagged, cfg, writer, run.info.run_name) for name in cfg.data.test_sets
        ]
        pages = run_pages(training, reports, cfg) + [page for s in sections for page in s.pages]
        write_summary_pdf(reports / "summary.pdf", summary_page(run.info.run_name, training, sections, cfg), pages)
        for s in sections:
            print(s.misclassified_pdf.result(), flush=True)
        log_report(reports, sections)
    print(f"report: wrote {reports}/summary.pdf and {len(pages)} figures for {len(sections)} test set(s)", flush=True)


@dataclass(frozen=True)
class Training:
    """What the train stage wrote to models/, and the training set it read."""

    name: str  # the training dataset
    dataset: Dataset
    labels: np.ndarray  # the training labels it used (data.train_limit)
    record: dict[str, Any]  # history.json: epochs run, best epoch, time, precision, class names, per-epoch history
    augmented: dict[str, np.ndarray]  # augmented.npz: `original` images, their `labels`, `augmented` copies


def read_training(cfg: DictConfig) -> Training:
    """models/history.json and models/augmented.npz, and the training set."""
    models_dir = Path(cfg.paths.models)
    ds = load_dataset(prepared_path(cfg.paths.prepared, cfg.data.name))
    with np.load(models_dir / "augmented.npz") as z:
        augmented = {k: z[k] for k in z.files}
    return Training(
        name=cfg.data.name,
        dataset=ds,
        labels=ds.y_train[: cfg.data.train_limit],
        record=read_json(models_dir / "history.json"),
        augmented=augmented,
    )


def run_pages(training: Training, reports: Path, cfg: DictConfig) -> list[Page]:
    """The figures of the whole run, in the order the summary shows them."""
    ds, labels = training.dataset, training.labels
    return [
        Page(reports / "curves.png", partial(plots.training_curves, training.record["history"], "Training curves")),
        Page(reports / "samples.png", partial(sample_grid, ds, 40, cfg.seed)),
        Page(reports / "augmented.png", partial(augmented_grid, training.augmented, cfg.augment.name, ds.class_names)),
        Page(
            reports / "class_distribution.png",
            partial(
                plots.class_distribution,
                np.bincount(labels, minlength=ds.num_classes),
                ds.class_names,
                f"Training set class distribution ({display(training.name)}, {len(labels):,} images)",
            ),
        ),
    ]


@dataclass(frozen=True)
class Section:
    """One test set's part of the report, as the summary and the run need it."""

    name: str
    source: str  # where the test set came from, a note on the summary page
    scores: dict[str, float]  # its row of the summary's table
    pages: list[Page]  # its figures, drawn with the summary
    per_class: list[dict[str, Any]]  # its per-class table, logged to the run
    label_issues: dict[str, float]  # its counts in metrics/label_issues.json
    misclassified_pdf: Future[str]  # drawn in the PDF writer meanwhile; says what it wrote


def report_test_set(
    name: str, training: Training, flagged: dict[str, Any], cfg: DictConfig, writer: Executor, run_name: str
) -> Section:
    """One test set: its tables, plot data and label issues written, its misclassification PDF handed to `writer`,
    its figures and scores returned for the summary."""
    p = read_predictions(name, training, cfg)
    reports = Path(cfg.paths.reports)
    if name not in flagged:
        raise FileNotFoundError(f"{COUNTS_FILE}: no test set {name} — run the label_issues stage (`dvc repro`)")
    copy_label_issues(name, Path(cfg.paths.label_issues), reports / name)
    per_class = write_tables(p, reports / name)
    write_plot_data(p, per_class, Path(cfg.paths.plots))
    pdf = misclassified_pdf(p, reports / pdf_name(name, training.name), cfg, run_name)
    return Section(
        name=name,
        source=p.dataset.source,
        scores=metrics.summary_scores(p.probs, p.y, p.cm),
        pages=prediction_pages(p, reports / name, cfg),
        per_class=per_class,
        label_issues=flagged[name],
        misclassified_pdf=writer.submit(write_misclassified_pdf, pdf),
    )


def read_predictions(name: str, training: Training, cfg: DictConfig) -> Predictions:
    """predictions/<test set>.npz as evaluate wrote it, with the test set's images."""
    path = Path(cfg.paths.predictions) / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no predictions for test set {name} — run the evaluate stage first (`dvc repro`)"
        )
    # MNIST's own test set lives in the training dataset's file: read it once.
    ds = training.dataset if name == training.name else load_dataset(prepared_path(cfg.paths.prepared, name))
    with np.load(path) as z:
        probs, y = z["probs"], z["y_true"]
    return Predictions.of(name, ds, probs, y, cfg.report.confused_pairs)


def read_label_issue_counts(cfg: DictConfig) -> dict[str, Any]:
    """metrics/label_issues.json: per test set, its flagged images and what leaving them out does."""
    path = Path(cfg.paths.metrics) / COUNTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found — run the label_issues stage first (`dvc repro`)")
    return read_json(path)


def copy_label_issues(name: str, found: Path, folder: Path) -> None:
    """The label_issues stage's CSV and PDF of test set `name`, as label_issues.csv and .pdf in `folder`."""
    for source in found_files(found, name):
        if not source.is_file():
            raise FileNotFoundError(f"{source}: not found — run the label_issues stage first (`dvc repro`)")
        with atomic_path(folder / f"label_issues{source.suffix}") as tmp:
            shutil.copyfile(source, tmp)


def write_tables(p: Predictions, folder: Path) -> list[dict[str, Any]]:
    """per_class.csv, classification_report.txt and confused_pairs.csv; returns the per-class rows."""
    per_class = per_class_rows(p.cm, p.class_names)
    write_text(folder / "per_class.csv", to_csv(per_class))
    write_text(folder / "classification_report.txt", classification_report(p.y, p.pred, p.class_names))
    names = p.class_names
    pairs = [{"true": names[t], "predicted": names[q], "count": n} for t, q, n in p.pairs]
    write_text(folder / "confused_pairs.csv", to_csv(pairs))
    return per_class


def write_plot_data(p: Predictions, per_class: Sequence[dict[str, Any]], plot_data: Path) -> None:
    """For `dvc plots`: each class's accuracy (per_class/<test set>.csv) and every image's true and predicted
    class (confusion/<test set>.csv)."""
    accuracy = [{"class": r["class"], "accuracy": round(r["recall"], 6)} for r in per_class]
    write_text(plot_data / "per_class" / f"{p.name}.csv", to_csv(accuracy))
    names = p.class_names
    actual = [{"actual": names[a], "predicted": names[q]} for a, q in zip(p.y, p.pred)]
    write_text(plot_data / "confusion" / f"{p.name}.csv", to_csv(actual))


def prediction_pages(p: Predictions, folder: Path, cfg: DictConfig) -> list[Page]:
    """The test set's figures, in the order the summary shows them."""
    return [
        Page(
            folder / "confusion.png",
            partial(plots.confusion_matrices, p.cm, p.class_names, f"{p.title}: confusion matrix"),
        ),
        Page(folder / "reliability.png", partial(reliability_figure, p)),
        Page(folder / "confused_pairs.png", partial(confused_pairs_figure, p)),
        Page(folder / "correct.png", partial(correct_grid, p, cfg.report.grid_size, cfg.seed)),
        Page(folder / "incorrect.png", partial(incorrect_grid, p, cfg.report.grid_size)),
    ]


def pdf_name(test_set: str, train_set: str) -> str:
    """The training set's own test set gets `misclassified.pdf`; others are named by their dataset family."""
    if test_set == train_set:
        return "misclassified.pdf"
    return f"misclassified_{test_set.split('_')[0].upper()}.pdf"


def misclassified_pdf(p: Predictions, path: Path, cfg: DictConfig, run_name: str) -> MisclassifiedPdf:
    """The most confident mistakes (up to report.max_misclassified), and a summary line for the first page."""
    shown = p.mistakes[: cfg.report.max_misclassified]
    summary = (
        f"Test set: {p.dataset.source}\n"
        f"{len(p.mistakes):,} of {len(p.y):,} images misclassified — accuracy {metrics.accuracy(p.probs, p.y):.2%}\n"
        f"Showing the {len(shown):,} most confident mistakes, most confident first."
    )
    return MisclassifiedPdf(
        path=path,
        images=p.images[shown],
        probs=p.probs[shown],
        y=p.y[shown],
        class_names=list(p.class_names),
        title=f"Misclassified: {run_name}",
        summary=summary,
        per_page=cfg.report.per_page,
        mistakes=len(p.mistakes),
    )


def summary_page(run_name: str, training: Training, sections: Sequence[Section], cfg: DictConfig) -> Figure:
    """The page a person reads first: what ran, each test set's scores and source, the training curves."""
    scores = {s.name: s.scores for s in sections}
    gap = generalisation_note(scores)
    notes = ([gap] if gap else []) + [f"{display(s.name)}: {s.source}" for s in sections]
    notes += [label_issue_note(display(s.name), s.label_issues) for s in sections]
    return plots.summary_page(
        run_name,
        config_line(cfg, training.record, len(training.labels)),
        headline_table(scores),
        notes,
        training.record["history"],
    )


def log_report(reports: Path, sections: Sequence[Section]) -> None:
    """Every test set's per-class table and every file under `reports`, to the active MLflow run."""
    for s in sections:
        mlflow.log_table({k: [r[k] for r in s.per_class] for k in s.per_class[0]}, f"tables/per_class_{s.name}.json")
    mlflow.log_artifacts(str(reports), "reports")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> None:
    validate(cfg)
    report(cfg)


if __name__ == "__main__":
    skip_final_collection()
    stop_on_signals(main, "report")
