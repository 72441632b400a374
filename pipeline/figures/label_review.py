"""A review queue written for the people who check it: its CSV (every row, for tools) and its PDF (each image with
its rank, row in the official file, given and suggested label, the flagged ones marked), for any set of images — a
test set's (the label_issues stage), the training set's (K-fold, pipeline/kfold_join.py) or an ensemble's
(pipeline/sweeps/ensemble.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.files import atomic_path
from pipeline.figures import plots
from pipeline.scoring.label_quality import LabelIssues, found_files, issue_counts, issues_csv


@dataclass(frozen=True)
class Findings:
    """One set of images' review queue with what writing it needs."""

    name: str  # the files': <name>.csv and .pdf
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
    """The review queue of checked probabilities, with its counts."""
    counts = issue_counts(issues, probs, labels)
    return Findings(name, title, described, images, rows, official_file, class_names, probs, labels, issues, counts)


def summary_text(t: Findings, shown: int) -> str:
    """The first page's lines under the title of the PDF."""
    c = t.counts
    return (
        f"{t.described}\n"
        f"The {c['queue']:,} of {c['images']:,} labels most likely wrong by cleanlab's label quality score,\n"
        f"{c['queue_errors']:,} of them among the model's {c['errors']:,} errors; "
        f"cleanlab's filter flags {c['flagged']:,} (framed, FLAGGED)\n"
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
        t.issues.flagged[: len(shown)],
        t.class_names,
        t.title,
        summary_text(t, len(shown)),
        per_page,
    )
    return [csv_path, pdf_path]


def issues_line(t: Findings, folder: Path) -> str:
    """What a tool prints of one set of images."""
    c = t.counts
    return (
        f"label_issues: {t.name}: review queue of {c['queue']} of {c['images']} labels, {c['queue_errors']} of them "
        f"among the {c['errors']} errors; {c['flagged']} flagged by cleanlab ({c['flagged_errors']} among the errors); "
        f"wrote {folder}/{t.name}.csv and .pdf"
    )
