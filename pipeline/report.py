"""Stage `report`: every figure and table, from what train and evaluate wrote — no retraining, no re-predicting.

Per run: reports/summary.pdf (read first), curves, 40 sample training images, 10 training images as augmentation
changed them in training, the training class distribution.
Per test set (reports/<test set>/): confusion matrices, reliability diagram, most confused pairs, grids of
correct and incorrect predictions, the classification report; and the misclassification PDF in reports/.
DVC plot data goes to plots/ (history.csv; confusion/ and per_class/, a CSV per test set), which is committed
with dvc.lock and metrics/ so that `dvc plots diff` shows how a change moved them. Everything is logged to the model's run.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import hydra
import mlflow
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from omegaconf import DictConfig

from pipeline import metrics, plots, tracking
from pipeline.datasets import Dataset, load_dataset, prepared_path
from pipeline.files import atomic_path, read_json
from pipeline.shutdown import skip_final_collection
from pipeline.tables import classification_report, per_class_rows, to_csv

DISPLAY_NAMES = {"mnist": "MNIST", "emnist_digits": "EMNIST digits", "emnist_balanced": "EMNIST 47 classes"}


def pdf_name(test_set: str, train_set: str) -> str:
    """The training set's own test set gets `misclassified.pdf`; others are named by their dataset family."""
    if test_set == train_set:
        return "misclassified.pdf"
    return f"misclassified_{test_set.split('_')[0].upper()}.pdf"


def display(name: str) -> str:
    return DISPLAY_NAMES.get(name, name)


def config_line(cfg: DictConfig, record: dict[str, Any], train_images: int) -> str:
    t = cfg.train
    return (
        f"{cfg.model.name} · augment {cfg.augment.name} · trained on {display(cfg.data.name)} "
        f"({train_images:,} images, {t.validation_split:.0%} held out)\n{record['epochs_run']} of {t.epochs} "
        f"epochs, best {record['best_epoch']} · batch {t.batch_size} · Adam {t.learning_rate:g} {t.schedule} · "
        f"{record['precision']} · "
        f"seed {cfg.seed} · {record['train_seconds']:.0f} s"
    )


def headline_table(scores: dict[str, dict[str, float]]) -> list[list[str]]:
    top5 = any("top5_accuracy" in s for s in scores.values())
    header = ["test set", "images", "accuracy", "loss", "macro F1", "ECE"] + (["top-5"] if top5 else [])
    rows = [header]
    for name, s in scores.items():
        row = [
            display(name),
            f"{s['images']:,}",
            f"{s['accuracy']:.2%}",
            f"{s['loss']:.4f}",
            f"{s['macro_f1']:.4f}",
            f"{s['ece']:.4f}",
        ]
        rows.append(row + ([f"{s['top5_accuracy']:.2%}"] if top5 else []))
    return rows


def generalisation_note(scores: dict[str, dict[str, float]]) -> str | None:
    if "mnist" not in scores or "emnist_digits" not in scores:
        return None
    m, e = scores["mnist"]["accuracy"], scores["emnist_digits"]["accuracy"]
    return f"Generalisation gap MNIST → EMNIST digits: {m:.2%} − {e:.2%} = {100 * (m - e):+.2f} points"


def sample_grid(ds: Dataset, n: int, seed: int):
    pick = np.random.default_rng(seed).choice(len(ds.x_train), size=min(n, len(ds.x_train)), replace=False)
    return plots.image_grid(
        ds.x_train[pick], [ds.class_names[y] for y in ds.y_train[pick]], f"{n} training images with their labels"
    )


def augmented_grid(path: Path, policy: str, class_names: Sequence[str]):
    """Training images (top row) and, below, what the augmentation policy made of them in training."""
    with np.load(path) as z:
        original, labels, augmented = z["original"], z["labels"], z["augmented"]
    captions = [class_names[y] for y in labels] + [""] * (len(augmented) * len(original))
    return plots.image_grid(
        np.concatenate([original, *augmented]),
        captions,
        f"augment={policy}: training images (top) as training sees them (below)",
        cols=len(original),
    )


def test_set_figures(name: str, ds: Dataset, probs: np.ndarray, y: np.ndarray, cfg: DictConfig):
    """(file name, figure-making function) for one test set, in the order the summary shows them."""
    names = ds.class_names
    images = ds.x_test[: len(y)]
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    cm = metrics.confusion_matrix(y, pred, len(names))
    rel = metrics.reliability(probs, y)
    title = display(name)
    wrong = metrics.misclassified_by_confidence(probs, y)
    right = np.flatnonzero(pred == y)
    right = np.random.default_rng(cfg.seed).choice(right, size=min(cfg.report.grid_size, len(right)), replace=False)
    pairs = metrics.most_confused_pairs(cm, cfg.report.confused_pairs)

    def pair_images():
        groups = [wrong[(y[wrong] == t) & (pred[wrong] == p)] for t, p, _ in pairs]
        labels = [f"{names[t]} → {names[p]}  ({n})" for t, p, n in pairs]
        return plots.confused_pairs(
            [images[g] for g in groups], labels, f"{title}: most confused pairs (true → predicted)"
        )

    shown_wrong = wrong[: cfg.report.grid_size]
    return (
        [
            ("confusion.png", lambda: plots.confusion_matrices(cm, names, f"{title}: confusion matrix")),
            (
                "reliability.png",
                lambda: plots.reliability_diagram(rel, metrics.calibration_error(rel), f"{title}: reliability"),
            ),
            ("confused_pairs.png", pair_images),
            (
                "correct.png",
                lambda: plots.image_grid(
                    images[right],
                    [f"{names[pred[i]]} ({conf[i]:.2f})" for i in right],
                    f"{title}: correct predictions (predicted, confidence)",
                ),
            ),
            (
                "incorrect.png",
                lambda: plots.image_grid(
                    images[shown_wrong],
                    [f"{names[y[i]]}→{names[pred[i]]} ({conf[i]:.2f})" for i in shown_wrong],
                    f"{title}: most confident mistakes (true→predicted, confidence)",
                    colours=["#d1352b"] * len(shown_wrong),
                ),
            ),
        ],
        cm,
        pairs,
        wrong,
    )


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def report(cfg: DictConfig) -> None:
    """All report files for the trained model, then the summary PDF; logged to the model's MLflow run."""
    reports, plot_data = Path(cfg.paths.reports), Path(cfg.paths.plots)
    models_dir = Path(cfg.paths.models)
    record = read_json(models_dir / "history.json")
    train_ds = load_dataset(prepared_path(cfg.paths.prepared, cfg.data.name))
    train_labels = train_ds.y_train[: cfg.data.train_limit]
    pages: list[tuple[Path, Callable]] = [
        (reports / "curves.png", lambda: plots.training_curves(record["history"], "Training curves")),
        (reports / "samples.png", lambda: sample_grid(train_ds, 40, cfg.seed)),
        (
            reports / "augmented.png",
            lambda: augmented_grid(models_dir / "augmented.npz", cfg.augment.name, train_ds.class_names),
        ),
        (
            reports / "class_distribution.png",
            lambda: plots.class_distribution(
                np.bincount(train_labels, minlength=train_ds.num_classes),
                train_ds.class_names,
                f"Training set class distribution ({display(cfg.data.name)}, {len(train_labels):,} images)",
            ),
        ),
    ]
    write_text(plot_data / "history.csv", to_csv(history_rows(record["history"])))

    with tracking.reopen_run(models_dir / "run.json", cfg.tracking) as run, pdf_writer() as writer:
        scores, notes, pdfs = {}, [], []
        for name in cfg.data.test_sets:
            # MNIST's own test set lives in the training dataset's file: read it once.
            ds = train_ds if name == cfg.data.name else load_dataset(prepared_path(cfg.paths.prepared, name))
            notes.append(f"{display(name)}: {ds.source}")
            with np.load(Path(cfg.paths.predictions) / f"{name}.npz") as z:
                probs, y = z["probs"], z["y_true"]
            figures, cm, pairs, wrong = test_set_figures(name, ds, probs, y, cfg)
            scores[name] = metrics.summary_scores(probs, y, cm)
            pages += [(reports / name / file, make) for file, make in figures]
            per_class = per_class_rows(cm, ds.class_names)
            write_text(reports / name / "per_class.csv", to_csv(per_class))
            write_text(reports / name / "classification_report.txt", classification_report(per_class))
            write_text(
                reports / name / "confused_pairs.csv",
                to_csv([{"true": ds.class_names[t], "predicted": ds.class_names[p], "count": n} for t, p, n in pairs]),
            )
            mlflow.log_table({k: [r[k] for r in per_class] for k in per_class[0]}, f"tables/per_class_{name}.json")
            write_text(
                plot_data / "per_class" / f"{name}.csv",
                to_csv([{"class": r["class"], "accuracy": round(r["recall"], 6)} for r in per_class]),
            )
            write_text(
                plot_data / "confusion" / f"{name}.csv",
                to_csv(
                    [{"actual": ds.class_names[a], "predicted": ds.class_names[p]} for a, p in zip(y, probs.argmax(1))]
                ),
            )
            pdfs.append(
                writer.submit(
                    write_misclassified_pdf,
                    reports / pdf_name(name, cfg.data.name),
                    *misclassified_pdf_args(ds, probs, y, wrong, cfg, run.info.run_name),
                )
            )

        gap = generalisation_note(scores)
        notes = ([gap] if gap else []) + notes
        with atomic_path(reports / "summary.pdf") as tmp, PdfPages(tmp) as pdf:
            first = plots.summary_page(
                run.info.run_name,
                config_line(cfg, record, len(train_labels)),
                headline_table(scores),
                notes,
                record["history"],
            )
            pdf.savefig(first)
            plots.close(first)
            for path, make in pages:
                fig = make()
                plots.save_figure(fig, path, keep_open=True)
                pdf.savefig(fig)
                plots.close(fig)
        for done in pdfs:
            print(done.result(), flush=True)
        mlflow.log_artifacts(str(reports), "reports")
    print(f"report: wrote {reports}/summary.pdf and {len(pages)} figures for {len(scores)} test set(s)", flush=True)


def history_rows(history: dict[str, Sequence[float]]) -> list[dict[str, float]]:
    return [{"epoch": i + 1, **{k: v[i] for k, v in history.items()}} for i in range(len(history["loss"]))]


class InProcess(Executor):
    """Runs each call at once, in this process."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def pdf_writer() -> Executor:
    """The misclassification PDFs are most of the report's work: a second process draws them while this one
    does the rest. Not inside a sweep's worker process: the cores are already shared out there (and joblib's
    workers cannot start processes the standard way)."""
    if multiprocessing.parent_process() is None:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return InProcess()


def misclassified_pdf_args(
    ds: Dataset, probs: np.ndarray, y: np.ndarray, order: np.ndarray, cfg: DictConfig, run_name: str
) -> tuple:
    """`order`: the mistakes, most confident first (metrics.misclassified_by_confidence). Only the shown
    mistakes' images and probabilities travel to the process that draws them."""
    shown = order[: cfg.report.max_misclassified]
    summary = (
        f"Test set: {ds.source}\n"
        f"{len(order):,} of {len(y):,} images misclassified — accuracy {metrics.accuracy(probs, y):.2%}\n"
        f"Showing the {len(shown):,} most confident mistakes, most confident first."
    )
    return (
        ds.x_test[shown],
        probs[shown],
        y[shown],
        list(ds.class_names),
        f"Misclassified: {run_name}",
        summary,
        cfg.report.per_page,
        len(order),
    )


def write_misclassified_pdf(
    path: Path,
    images: np.ndarray,
    probs: np.ndarray,
    y: np.ndarray,
    class_names: list[str],
    title: str,
    summary: str,
    per_page: int,
    mistakes: int,
) -> str:
    plots.misclassified_pdf(path, images, probs, y, np.arange(len(y)), class_names, title, summary, per_page)
    return f"report: wrote {path} ({len(y)} of {mistakes} mistakes)"


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    report(cfg)


if __name__ == "__main__":
    skip_final_collection()
    main()
