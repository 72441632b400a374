"""Figures: drawing only; every number shown is computed elsewhere and passed in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pipeline.files import atomic_path  # noqa: E402

A4_PORTRAIT = (8.27, 11.69)
TRUE_COLOUR, WRONG_COLOUR, OTHER_COLOUR = "#2a9d3c", "#d1352b", "#9aa3ad"


def training_curves(history: Mapping[str, Sequence[float]], title: str) -> Figure:
    """Loss, accuracy (training and validation) and the learning rate per epoch."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for ax, metric in zip(axes[:2], ("loss", "accuracy")):
        ax.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        ax.set(title=metric, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[2].plot(epochs, history["learning_rate"], "o-", color="tab:purple")
    axes[2].set(title="learning rate", xlabel="epoch", yscale="log")
    axes[2].grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _mistake_panel(ax_img, ax_bar, image, probs, true, class_names) -> None:
    pred = int(np.argmax(probs))
    ax_img.imshow(image, cmap="gray_r", vmin=0, vmax=255)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    ax_img.set_title(f"true {class_names[true]}", fontsize=9, color=TRUE_COLOUR, pad=4)
    colours = [OTHER_COLOUR] * len(probs)
    colours[true], colours[pred] = TRUE_COLOUR, WRONG_COLOUR
    ax_bar.bar(np.arange(len(probs)), probs, color=colours, width=0.8)
    ax_bar.set_ylim(0, 1)
    ax_bar.set_xticks(np.arange(len(probs)), class_names, fontsize=7 if len(probs) <= 20 else 4.5)
    ax_bar.tick_params(axis="y", labelsize=7)
    ax_bar.set_title(f"predicted {class_names[pred]} ({probs[pred]:.2f})", fontsize=9, color=WRONG_COLOUR, pad=4)


def misclassified_pdf(
    path: str | Path,
    images: np.ndarray,
    probs: np.ndarray,
    y_true: np.ndarray,
    order: np.ndarray,
    class_names: Sequence[str],
    title: str,
    summary: str,
    per_page: int = 12,
) -> None:
    """One panel per mistake in `order`: the image with its true label beside the probability of every class.

    The first page opens with `title` and `summary` (count and accuracy). A page is drawn even when there are
    no mistakes, so the file always exists and says so.
    """
    cols = 2
    rows = max(1, per_page // cols)
    pages = [order[i : i + rows * cols] for i in range(0, len(order), rows * cols)] or [order[:0]]
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        for page_no, page in enumerate(pages):
            fig = plt.figure(figsize=A4_PORTRAIT)
            top = 0.84 if page_no == 0 else 0.95
            if page_no == 0:
                fig.text(0.5, 0.965, title, ha="center", va="top", fontsize=15, weight="bold")
                fig.text(0.5, 0.925, summary, ha="center", va="top", fontsize=10.5, linespacing=1.5)
            grid = fig.add_gridspec(rows, cols * 2, width_ratios=[1, 2.4] * cols, top=top, bottom=0.04,
                                    left=0.04, right=0.98, hspace=0.5, wspace=0.3)
            for k, i in enumerate(page):
                r, c = divmod(k, cols)
                _mistake_panel(fig.add_subplot(grid[r, 2 * c]), fig.add_subplot(grid[r, 2 * c + 1]),
                               images[i], probs[i], int(y_true[i]), class_names)
            if len(page) == 0:
                fig.text(0.5, 0.5, "No misclassified images.", ha="center", fontsize=14)
            fig.text(0.98, 0.01, f"page {page_no + 1} of {len(pages)}", ha="right", fontsize=8, color="grey")
            pdf.savefig(fig)
            plt.close(fig)


def sweep_comparison(rows: Sequence[Mapping], test_sets: Sequence[str]) -> Figure:
    """Accuracy per variant and test set, side by side, best at the top."""
    key = f"{test_sets[0]}_accuracy"
    rows = sorted(rows, key=lambda r: r.get(key) or 0)
    y = np.arange(len(rows))
    height = 0.8 / max(1, len(test_sets))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * len(rows) * max(1, len(test_sets)) / 1.5), layout="constrained")
    for k, name in enumerate(test_sets):
        values = [r.get(f"{name}_accuracy") or 0 for r in rows]
        bars = ax.barh(y + k * height, values, height, label=name)
        ax.bar_label(bars, labels=[f"{v:.2%}" for v in values], fontsize=8, padding=2)
    ax.set_yticks(y + height * (len(test_sets) - 1) / 2, [r["variant"] for r in rows], fontsize=9)
    lowest = min([r.get(f"{n}_accuracy") or 1 for r in rows for n in test_sets] + [1])
    ax.set_xlim(max(0.0, lowest - 0.05), 1.0)
    ax.set_xlabel("test accuracy")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Sweep: test accuracy per variant")
    return fig
