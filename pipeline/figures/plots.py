"""Figures: drawing only; every number shown is computed elsewhere and passed in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline.core.files import atomic_path

if TYPE_CHECKING:
    from pipeline.scoring.comparison import Comparison

A4_PORTRAIT = (8.27, 11.69)
TRUE_COLOUR, WRONG_COLOUR, OTHER_COLOUR = "#2a9d3c", "#d1352b", "#9aa3ad"
# A PDF without its creation date: the same report twice is the same file, so DVC does not see a new output.
SAME_BYTES = {"CreationDate": None}


# The captions over the images of a grid or a panel, at the axes' top: given a height, matplotlib no longer places
# each title at every draw above whatever the axes show there (nothing does, on these axes). The same pixels and
# bytes; a grid of 40 images draws 2.4 times as fast (0.30 s against 0.13 s, as PNG and again as PDF page).
TITLE_Y = 1.0


def draw_curves(axes, history: Mapping[str, Sequence[float]]) -> None:
    """Loss, accuracy (training and validation) and the learning rate per epoch, on three given axes."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes[:2], ("loss", "accuracy")):
        ax.plot(epochs, history[metric], "o-", label="training", markersize=3)
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation", markersize=3)
        ax.set(title=metric, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[2].plot(epochs, history["learning_rate"], "o-", color="tab:purple", markersize=3)
    axes[2].set(title="learning rate", xlabel="epoch", yscale="log")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[2].grid(alpha=0.3)


def training_curves(history: Mapping[str, Sequence[float]], title: str) -> Figure:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    draw_curves(axes, history)
    fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | Path, keep_open: bool = False) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    if not keep_open:
        plt.close(fig)


def close(fig: Figure) -> None:
    plt.close(fig)


SUSPECT_COLOUR, SUGGESTED_COLOUR = "#d1352b", "#2b6cb0"


def _panel_axes(ax_img, ax_bar, image, probs, class_names, colours) -> None:
    """An image beside the probability of every class, its bars coloured by `colours`."""
    ax_img.imshow(image, cmap="gray_r", vmin=0, vmax=255)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    ax_bar.bar(np.arange(len(probs)), probs, color=colours, width=0.8)
    ax_bar.set_ylim(0, 1)
    ax_bar.set_xticks(np.arange(len(probs)), class_names, fontsize=7 if len(probs) <= 20 else 4.5)
    ax_bar.tick_params(axis="y", labelsize=7)


def _mistake_panel(ax_img, ax_bar, image, probs, true, class_names) -> None:
    pred = int(np.argmax(probs))
    colours = [OTHER_COLOUR] * len(probs)
    colours[true], colours[pred] = TRUE_COLOUR, WRONG_COLOUR
    _panel_axes(ax_img, ax_bar, image, probs, class_names, colours)
    ax_img.set_title(f"true {class_names[true]}", fontsize=9, color=TRUE_COLOUR, pad=4, y=TITLE_Y)
    ax_bar.set_title(
        f"predicted {class_names[pred]} ({probs[pred]:.2f})", fontsize=9, color=WRONG_COLOUR, pad=4, y=TITLE_Y
    )


def _issue_panel(ax_img, ax_bar, image, probs, given, suggested, row, score, rank, flagged, class_names) -> None:
    colours = [OTHER_COLOUR] * len(probs)
    colours[suggested], colours[given] = SUGGESTED_COLOUR, SUSPECT_COLOUR
    _panel_axes(ax_img, ax_bar, image, probs, class_names, colours)
    # The given class's bar is often too short to see: its tick label carries the colour instead.
    tick = ax_bar.get_xticklabels()[given]
    tick.set_color(SUSPECT_COLOUR)
    tick.set_fontweight("bold")
    if flagged:  # cleanlab's verdict, besides the rank: a frame round the image and the word under it
        for spine in ax_img.spines.values():
            spine.set_color(SUSPECT_COLOUR)
            spine.set_linewidth(3)
        ax_img.set_xlabel("FLAGGED", fontsize=8, color=SUSPECT_COLOUR, weight="bold", labelpad=2)
    ax_img.set_title(f"{rank}. #{row}: given {class_names[given]}", fontsize=9, color=SUSPECT_COLOUR, pad=4, y=TITLE_Y)
    ax_bar.set_title(
        f"suggested {class_names[suggested]} ({probs[suggested]:.2f}) · given {class_names[given]} ({score:.2g})",
        fontsize=9,
        color=SUGGESTED_COLOUR,
        pad=4,
        y=TITLE_Y,
    )


def _panel_pages(
    path: str | Path, count: int, draw: Callable, title: str, summary: str, per_page: int, empty: str
) -> None:
    """A PDF of `count` panels, two a row, `per_page` a page; `draw(k, ax_img, ax_bar)` draws the k-th. The first
    page opens with `title` and `summary`; with no panels, one page says `empty`, so the file always exists."""
    cols = 2
    rows = max(1, per_page // cols)
    order = np.arange(count)
    pages = [order[i : i + rows * cols] for i in range(0, count, rows * cols)] or [order[:0]]
    with atomic_path(path) as tmp, PdfPages(tmp, metadata=SAME_BYTES) as pdf:
        for page_no, page in enumerate(pages):
            fig = plt.figure(figsize=A4_PORTRAIT)
            top = 0.84 if page_no == 0 else 0.95
            if page_no == 0:
                fig.text(0.5, 0.965, title, ha="center", va="top", fontsize=15, weight="bold")
                fig.text(0.5, 0.925, summary, ha="center", va="top", fontsize=10.5, linespacing=1.5)
            grid = fig.add_gridspec(
                rows,
                cols * 2,
                width_ratios=[1, 2.4] * cols,
                top=top,
                bottom=0.04,
                left=0.04,
                right=0.98,
                hspace=0.5,
                wspace=0.3,
            )
            for k, i in enumerate(page):
                r, c = divmod(k, cols)
                draw(int(i), fig.add_subplot(grid[r, 2 * c]), fig.add_subplot(grid[r, 2 * c + 1]))
            if len(page) == 0:
                fig.text(0.5, 0.5, empty, ha="center", fontsize=14)
            fig.text(0.98, 0.01, f"page {page_no + 1} of {len(pages)}", ha="right", fontsize=8, color="grey")
            pdf.savefig(fig)
            plt.close(fig)


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

    def draw(k: int, ax_img, ax_bar) -> None:
        i = order[k]
        _mistake_panel(ax_img, ax_bar, images[i], probs[i], int(y_true[i]), class_names)

    _panel_pages(path, len(order), draw, title, summary, per_page, "No misclassified images.")


def label_issues_pdf(
    path: str | Path,
    images: np.ndarray,
    probs: np.ndarray,
    given: np.ndarray,
    rows: np.ndarray,
    scores: np.ndarray,
    flagged: np.ndarray,
    class_names: Sequence[str],
    title: str,
    summary: str,
    per_page: int = 12,
) -> None:
    """One panel per image of a review queue, in its order (most likely wrong first): its rank, its row in the
    official file and its given label, framed and marked FLAGGED where cleanlab flags it, beside the probability of
    every class and the suggested (most probable) one."""

    def draw(k: int, ax_img, ax_bar) -> None:
        p = probs[k]
        suggested = int(np.argmax(p))
        _issue_panel(
            ax_img, ax_bar, images[k], p, int(given[k]), suggested, rows[k], scores[k], k + 1, flagged[k], class_names
        )

    _panel_pages(path, len(given), draw, title, summary, per_page, "No images to review.")


VERDICT_COLOURS = {
    "best": TRUE_COLOUR,
    "not distinguishable": "#2b6cb0",
    "seeds disagree": "#e08a1e",
    "better": "#8e44ad",
}


def sweep_comparison(comparison: Comparison) -> Figure:
    """One panel per test set: each variant's mean accuracy with its 95% interval over seeds (solid), or, with one
    seed, the test images' interval (dashed); its seeds as dots; coloured by what the paired test says."""
    test_sets = comparison.test_sets or ["(none)"]
    order = [r.variant for r in reversed(comparison.of(test_sets[0]))]  # the best at the top
    fig, axes = plt.subplots(
        1,
        len(test_sets),
        figsize=(3 + 4 * len(test_sets), 1.4 + 0.42 * max(1, len(order))),
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    for ax, test_set in zip(axes[0], test_sets):
        results = {r.variant: r for r in comparison.of(test_set)}
        for y, variant in enumerate(order):
            r = results[variant]
            colour = VERDICT_COLOURS.get(r.verdict, OTHER_COLOUR)
            seeds_known = r.accuracy.low is not None
            low, high = (r.accuracy.low, r.accuracy.high) if seeds_known else (r.test_interval or (None, None))
            if low is not None:
                ax.plot([100 * low, 100 * high], [y, y], color=colour, lw=2, ls="-" if seeds_known else "--")
            values = [v for v in r.values if v is not None]
            ax.plot([100 * v for v in values], [y] * len(values), "o", color=colour, alpha=0.45, ms=4, mew=0)
            ax.plot(100 * r.accuracy.mean, y, "D", color=colour, ms=6)
        ax.set_title(test_set)
        ax.set_xlabel("test accuracy (%)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(order)), order, fontsize=9)
    handles = [
        plt.Line2D([], [], color=c, marker="D", lw=2, label=v)
        for v, c in [*VERDICT_COLOURS.items(), ("worse", OTHER_COLOUR)]
    ]
    handles += [
        plt.Line2D([], [], color="black", lw=2, label="95% CI over seeds"),
        plt.Line2D([], [], color="black", lw=2, ls="--", label="95% CI of one run's test images"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    s = comparison.settings
    fig.suptitle(f"Mean test accuracy per variant\n(best by {s.metric} on {s.test_set}; α = {s.alpha})", fontsize=11)
    return fig


def confusion_matrices(cm: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    """Counts and row-normalised (share of each true class), side by side; numbers written in where legible."""
    n = len(class_names)
    size = 5.5 if n <= 12 else 9
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size + 1.2), layout="constrained")
    normalised = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    for ax, data, label in ((axes[0], cm, "counts"), (axes[1], normalised, "share of true class")):
        shown = np.log1p(data) if label == "counts" else data
        ax.imshow(shown, cmap="Blues")
        ax.set_title(label)
        ticks = np.arange(n)
        font = 8 if n <= 12 else 5
        ax.set_xticks(ticks, class_names, fontsize=font)
        ax.set_yticks(ticks, class_names, fontsize=font)
        ax.set(xlabel="predicted", ylabel="true")
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    value = data[i, j]
                    text = f"{value:d}" if label == "counts" else (f"{value:.2f}" if value >= 0.005 else "")
                    dark = shown[i, j] > 0.6 * shown.max()
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    fig.suptitle(title)
    return fig


def reliability_diagram(rel: Mapping[str, np.ndarray], ece: float, title: str) -> Figure:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration and the bins' sizes."""
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(6, 6.5), height_ratios=[3, 1], sharex=True, layout="constrained")
    edges = rel["edges"]
    width = np.diff(edges)
    used = rel["count"] > 0
    ax.bar(
        edges[:-1][used],
        rel["accuracy"][used],
        width=width[used],
        align="edge",
        edgecolor="black",
        color="#4c72b0",
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=f"{title}\nexpected calibration error {ece:.4f}")
    ax.legend(loc="upper left", fontsize=8)
    ax_n.bar(edges[:-1], rel["count"], width=width, align="edge", color="#999999")
    ax_n.set(xlabel="confidence (highest probability)", ylabel="images", yscale="symlog")
    return fig


def image_grid(
    images: np.ndarray, captions: Sequence[str], title: str, cols: int = 10, colours: Sequence[str] | None = None
) -> Figure:
    """Images in a grid, each with a short caption above it."""
    n = max(1, len(images))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.05, rows * 1.25 + 0.5), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k], cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(captions[k], fontsize=7, color=(colours[k] if colours else "black"), y=TITLE_Y)
    if not len(images):
        fig.text(0.5, 0.5, "none", ha="center")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def class_distribution(counts: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(counts) + 2), 3.5), layout="constrained")
    ax.bar(np.arange(len(counts)), counts, color="#4c72b0")
    ax.set_xticks(np.arange(len(counts)), class_names, fontsize=8 if len(counts) <= 20 else 6)
    ax.set(ylabel="training images", title=title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def confused_pairs(images_per_pair: Sequence[np.ndarray], labels: Sequence[str], title: str, cols: int = 8) -> Figure:
    """One row per confused pair (true -> predicted, count), with a few of its images."""
    rows = max(1, len(labels))
    fig, axes = plt.subplots(
        rows, cols + 1, figsize=(cols + 2.2, rows * 1.05 + 0.6), squeeze=False, width_ratios=[2.2] + [1] * cols
    )
    for r in range(rows):
        for ax in axes[r]:
            ax.axis("off")
        if r < len(labels):
            axes[r, 0].text(0.95, 0.5, labels[r], ha="right", va="center", fontsize=10)
            for c, image in enumerate(images_per_pair[r][:cols]):
                axes[r, c + 1].imshow(image, cmap="gray_r", vmin=0, vmax=255)
    if not labels:
        fig.text(0.5, 0.5, "No misclassified images.", ha="center")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def summary_page(
    title: str,
    config_line: str,
    table: Sequence[Sequence[str]],
    notes: Sequence[str],
    history: Mapping[str, Sequence[float]],
) -> Figure:
    """The page a person reads first: what ran, the headline numbers per test set, and the training curves."""
    fig = plt.figure(figsize=A4_PORTRAIT[::-1])
    fig.text(0.5, 0.95, title, ha="center", va="top", fontsize=16, weight="bold")
    fig.text(0.5, 0.91, config_line, ha="center", va="top", fontsize=9.5, linespacing=1.4)
    ax_table = fig.add_axes([0.05, 0.62, 0.9, 0.24])
    ax_table.axis("off")
    tbl = ax_table.table(
        cellText=[list(r) for r in table[1:]], colLabels=list(table[0]), loc="upper center", cellLoc="center"
    )
    tbl.auto_set_font_size(False)
    tbl.set_fontsize(10)
    tbl.scale(1, 1.6)
    for (row, _), cell in tbl.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8edf3")
    fig.text(0.5, 0.82 - 0.033 * len(table), "\n".join(notes), ha="center", va="top", fontsize=10, linespacing=1.5)
    grid = fig.add_gridspec(1, 3, left=0.06, right=0.97, bottom=0.08, top=0.5, wspace=0.28)
    draw_curves([fig.add_subplot(grid[0, i]) for i in range(3)], history)
    return fig


def prediction(image: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> Figure:
    """The 28x28 input the model saw, beside its probability for every class."""
    pred = int(np.argmax(probs))
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(7, 2.6), width_ratios=[1, 2.6], layout="constrained")
    ax_img.imshow(image, cmap="gray", vmin=0, vmax=255)
    ax_img.set_title("model input (28x28)", fontsize=9)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    colours = [OTHER_COLOUR] * len(probs)
    colours[pred] = "#4c72b0"
    ax_bar.bar(np.arange(len(probs)), probs, color=colours)
    ax_bar.set_xticks(np.arange(len(probs)), class_names, fontsize=8 if len(probs) <= 20 else 5)
    ax_bar.set_ylim(0, 1)
    ax_bar.set_title(f"predicted {class_names[pred]} ({probs[pred]:.1%})", fontsize=10)
    return fig
