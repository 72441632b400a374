"""The report's figures: what each shows of a test set's predictions or of what training wrote (which images, their
captions; the summary page's text), drawn by plots.py; and the PDFs that gather them, the summary (every figure, each
also saved as its own file) and the misclassified images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from pipeline.core.files import atomic_path
from pipeline.data.datasets import Dataset, display
from pipeline.figures import plots
from pipeline.scoring import metrics

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from pipeline.scoring.predictions import Predictions


@dataclass(frozen=True)
class Page:
    """One figure of the report, drawn once: saved as `path` and as a page of the summary PDF."""

    path: Path
    draw: Callable[[], Figure]


def sample_grid(ds: Dataset, n: int, seed: int) -> Figure:
    pick = np.random.default_rng(seed).choice(len(ds.x_train), size=min(n, len(ds.x_train)), replace=False)
    return plots.image_grid(
        ds.x_train[pick], [ds.class_names[y] for y in ds.y_train[pick]], f"{n} training images with their labels"
    )


def augmented_grid(examples: dict[str, np.ndarray], policy: str, class_names: Sequence[str]) -> Figure:
    """Training images (top row) and, below, what the augmentation policy made of them in training."""
    original, labels, augmented = examples["original"], examples["labels"], examples["augmented"]
    captions = [class_names[y] for y in labels] + [""] * (len(augmented) * len(original))
    return plots.image_grid(
        np.concatenate([original, *augmented]),
        captions,
        f"augment={policy}: training images (top) as training sees them (below)",
        cols=len(original),
    )


def reliability_figure(p: Predictions) -> Figure:
    rel = metrics.reliability(p.probs, p.y)
    return plots.reliability_diagram(rel, metrics.calibration_error(rel), f"{p.title}: reliability")


def pair_examples(p: Predictions) -> list[np.ndarray]:
    """For each most confused pair, the indices of its images, the most confident mistake first."""
    return [p.mistakes[(p.y[p.mistakes] == t) & (p.pred[p.mistakes] == q)] for t, q, _ in p.pairs]


def confused_pairs_figure(p: Predictions) -> Figure:
    names = p.class_names
    labels = [f"{names[t]} → {names[q]}  ({n})" for t, q, n in p.pairs]
    return plots.confused_pairs(
        [p.images[i] for i in pair_examples(p)], labels, f"{p.title}: most confused pairs (true → predicted)"
    )


def correct_sample(p: Predictions, n: int, seed: int) -> np.ndarray:
    """Indices of up to n correctly classified images, a seeded random choice."""
    right = np.flatnonzero(p.pred == p.y)
    return np.random.default_rng(seed).choice(right, size=min(n, len(right)), replace=False)


def correct_grid(p: Predictions, n: int, seed: int) -> Figure:
    shown = correct_sample(p, n, seed)
    return plots.image_grid(
        p.images[shown],
        [f"{p.class_names[p.pred[i]]} ({p.confidence[i]:.2f})" for i in shown],
        f"{p.title}: correct predictions (predicted, confidence)",
    )


def incorrect_grid(p: Predictions, n: int) -> Figure:
    shown = p.mistakes[:n]
    names = p.class_names
    return plots.image_grid(
        p.images[shown],
        [f"{names[p.y[i]]}→{names[p.pred[i]]} ({p.confidence[i]:.2f})" for i in shown],
        f"{p.title}: most confident mistakes (true→predicted, confidence)",
        colours=["#d1352b"] * len(shown),
    )


def config_line(cfg: DictConfig, record: dict[str, Any], train_images: int) -> str:
    """What ran, in two lines under the summary's title: the network, the data, the training as configured and as
    it went (`record`: history.json)."""
    t = cfg.train
    return (
        f"{cfg.model.name} · augment {cfg.augment.name} · trained on {display(cfg.data.name)} "
        f"({train_images:,} images, {t.validation_split:.0%} held out)\n{record['epochs_run']} of {t.epochs} "
        f"epochs, best {record['best_epoch']} · batch {t.batch_size} · Adam {t.learning_rate:g} {t.schedule} · "
        f"{record['precision']} · "
        f"seed {cfg.seed} · {record['train_seconds']:.0f} s"
    )


def headline_table(scores: dict[str, dict[str, float]]) -> list[list[str]]:
    """The summary's table: a header, then a row per test set; a top-5 column when any test set has it."""
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
    """The MNIST → EMNIST digits gap as the summary states it; None unless both test sets were scored."""
    accuracy = {name: s["accuracy"] for name, s in scores.items()}
    gap = metrics.generalisation_gap(accuracy)
    if gap is None:
        return None
    m, e = (accuracy[name] for name in metrics.GAP_TEST_SETS)
    return f"Generalisation gap MNIST → EMNIST digits: {m:.2%} − {e:.2%} = {100 * gap:+.2f} points"


def label_issue_note(test_set: str, counts: dict[str, float]) -> str:
    """A test set's label issues as the summary states them: how many images are flagged and how many of its errors
    they are, and the accuracy on the others, named so that nobody takes it for a corrected accuracy; and how many
    of its errors the review queue holds."""
    kept = counts["images"] - counts["flagged"]
    return (
        f"{test_set}: {counts['flagged']:,} labels flagged as likely wrong, {counts['flagged_errors']:,} of its "
        f"{counts['errors']:,} errors; accuracy on the other {kept:,}: {counts['accuracy_excluding_flagged']:.2%} "
        f"(not a corrected accuracy)\n{test_set}'s review queue: the {counts['queue']:,} labels most likely wrong, "
        f"{counts['queue_errors']:,} of them among its errors (label_issues.pdf)"
    )


@dataclass(frozen=True)
class MisclassifiedPdf:
    """What the process that draws a misclassification PDF needs: only the shown mistakes travel to it."""

    path: Path
    images: np.ndarray
    probs: np.ndarray
    y: np.ndarray
    class_names: list[str]
    title: str
    summary: str
    per_page: int
    mistakes: int  # all of them, shown or not


def write_misclassified_pdf(pdf: MisclassifiedPdf) -> str:
    order = np.arange(len(pdf.y))
    plots.misclassified_pdf(
        pdf.path, pdf.images, pdf.probs, pdf.y, order, pdf.class_names, pdf.title, pdf.summary, pdf.per_page
    )
    return f"report: wrote {pdf.path} ({len(pdf.y)} of {pdf.mistakes} mistakes)"


def write_summary_pdf(path: Path, first: Figure, pages: Sequence[Page]) -> None:
    """`first`, then every page's figure, each drawn once and also saved as its own file."""
    with atomic_path(path) as tmp, PdfPages(tmp, metadata=plots.SAME_BYTES) as pdf:
        pdf.savefig(first)
        plots.close(first)
        for page in pages:
            fig = page.draw()
            plots.save_figure(fig, page.path, keep_open=True)
            pdf.savefig(fig)
            plots.close(fig)
