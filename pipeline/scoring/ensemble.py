"""Several models' probabilities on the same test images, averaged: an ensemble's out-of-sample estimate, which ranks
wrong labels better than any one model's and whose argmax is often more accurate. Only runs that scored the same
test set (the same source, images and labels) with the same class names are averaged; anything else is refused in
one line naming the first run that differs and how."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.errors import UserError
from pipeline.scoring import metrics


class EnsembleError(UserError, ValueError):
    """Runs that cannot be averaged: the message names the runs and what differs."""


@dataclass(frozen=True)
class Member:
    """One run's probabilities on one test set."""

    run: str  # its name, as the message names it
    source: str  # where the test set came from, as the run recorded it
    class_names: tuple[str, ...]  # its model's
    labels: np.ndarray
    probs: np.ndarray


def averaged(test_set: str, members: Sequence[Member]) -> np.ndarray:
    """The mean of the members' probabilities, once every member is checked against the first."""
    if not members:
        raise EnsembleError(f"{test_set}: no run evaluated it — nothing to average")
    first = members[0]
    for m in members[1:]:
        differs = difference(first, m)
        if differs:
            raise EnsembleError(
                f"{test_set}: run {m.run} {differs} — only runs that evaluated the same test set with the same class "
                "names are averaged"
            )
    return np.mean([m.probs for m in members], axis=0)


def difference(a: Member, b: Member) -> str:
    """How `b` differs from `a` in what averaging needs, in a few words; empty when it does not."""
    if b.class_names != a.class_names:
        return f"has classes {', '.join(b.class_names)}, run {a.run} {', '.join(a.class_names)}"
    if b.source != a.source:
        return f"evaluated {b.source!r}, run {a.run} {a.source!r}"
    if len(b.labels) != len(a.labels):
        return f"evaluated {len(b.labels):,} images, run {a.run} {len(a.labels):,} (evaluate.limit?)"
    if not np.array_equal(b.labels, a.labels):
        return f"has other labels than run {a.run} for the same images (the prepared data changed between them)"
    if b.probs.shape != a.probs.shape:
        return f"has probabilities of shape {list(b.probs.shape)}, run {a.run} {list(a.probs.shape)}"
    return ""


def ensemble_scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The averaged probabilities scored as one run's are: accuracy (of their argmax), its interval, loss, …"""
    return metrics.summary_scores(probs, labels)
