"""A K-fold sweep's out-of-fold predictions: each fold job's file, and their join into one probability per training
image — refused, with what is wrong, unless the folds cover the training set exactly once and were all run with the
same settings (a sweep resumed with another config, or a fold copied in from another sweep, would otherwise give
labels scored by different models without a word)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import UserError
from pipeline.core.files import write_npz

FOLD_FILE = "out_of_fold.npz"  # in each fold job's folder


class FoldsError(UserError, ValueError):
    """Folds that cannot be joined; the message names the folds or files and what is wrong."""


@dataclass(frozen=True)
class FoldPredictions:
    """One fold's held-out images and the probabilities a model trained without them gave them."""

    fold: int
    folds: int
    positions: np.ndarray  # in the training set the folds divide (the prepared file's first data.train_limit)
    labels: np.ndarray  # their given labels
    probs: np.ndarray
    settings: dict[str, Any]  # every setting but the fold index and the paths: equal in every fold of one sweep
    source: str  # the file, for messages


def fold_settings(flat_config: Mapping[str, Any]) -> dict[str, Any]:
    """What must be the same in every fold of one join: the flattened config without the fold index (each fold's
    own) and the paths a sweep job has in its own folder (all but the prepared data's, which the join reads)."""
    return {
        k: v
        for k, v in flat_config.items()
        if k != "kfold.fold" and (not k.startswith("paths.") or k == "paths.prepared")
    }


def write_fold(path: Path, p: FoldPredictions) -> None:
    write_npz(
        path,
        fold=np.int64(p.fold),
        folds=np.int64(p.folds),
        positions=p.positions.astype(np.int64),
        labels=p.labels,
        probs=p.probs,
        settings=np.array(json.dumps(p.settings, sort_keys=True)),
    )


def read_fold(path: Path) -> FoldPredictions:
    with np.load(path) as z:
        if not {"fold", "folds", "positions", "labels", "probs", "settings"} <= set(z.files):
            raise FoldsError(f"{path}: not a fold's out-of-fold predictions — run that fold again")
        return FoldPredictions(
            int(z["fold"]),
            int(z["folds"]),
            z["positions"],
            z["labels"],
            z["probs"],
            json.loads(str(z["settings"])),
            str(path),
        )


def settings_difference(a: Mapping[str, Any], b: Mapping[str, Any], most: int = 3) -> str:
    """`seed=1 against 42, train.epochs=2 against 16`: the first settings that differ, `a`'s value first."""
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, "(absent)") != b.get(k, "(absent)"))
    shown = [f"{k}={json.dumps(a.get(k, '(absent)'))} against {json.dumps(b.get(k, '(absent)'))}" for k in keys]
    return ", ".join(shown[:most]) + (f" and {len(keys) - most} more" if len(keys) > most else "")


def no_folds(where: str) -> FoldsError:
    return FoldsError(f"{where}: no {FOLD_FILE} found — run the folds first (`python -m pipeline.kfold -m …`)")


def check_folds(found: Sequence[FoldPredictions], images: int, where: str) -> None:
    """Refuses, naming what is wrong, folds that are not one sweep's every fold, covering the `images` training
    images exactly once."""
    if not found:
        raise no_folds(where)
    first = min(found, key=lambda p: p.fold)
    for p in found:
        if p.settings != first.settings:
            raise FoldsError(
                f"fold {p.fold} ({p.source}) was run with other settings than fold {first.fold} ({first.source}): "
                f"{settings_difference(p.settings, first.settings)} — join the folds of one sweep"
            )
    seen: dict[int, str] = {}
    for p in found:
        if p.fold in seen:
            raise FoldsError(f"fold {p.fold} is there twice: {seen[p.fold]} and {p.source} — join one sweep's folds")
        seen[p.fold] = p.source
    missing = sorted(set(range(first.folds)) - set(seen))
    extra = sorted(set(seen) - set(range(first.folds)))
    if extra:
        raise FoldsError(f"fold {extra[0]} ({seen[extra[0]]}) is not one of the {first.folds} folds (0 to "
                         f"{first.folds - 1})")  # fmt: skip
    if missing:
        listed = ",".join(map(str, missing))
        raise FoldsError(
            f"{where}: fold{'s' if len(missing) > 1 else ''} {listed} of {first.folds} missing — run "
            f"{'them' if len(missing) > 1 else 'it'} with the same settings: `python -m pipeline.kfold -m "
            f"kfold.fold={listed} hydra.sweep.dir={where}`"
        )
    counts = np.zeros(images, dtype=np.int64)
    for p in found:
        outside = p.positions[(p.positions < 0) | (p.positions >= images)]
        if len(outside):
            raise FoldsError(f"{p.source}: image {int(outside[0])} is not one of the {images} training images")
        np.add.at(counts, p.positions, 1)
    if (counts > 1).any():
        twice = np.flatnonzero(counts > 1)
        owners = [p.fold for p in found if np.isin(twice[0], p.positions)]
        raise FoldsError(
            f"{len(twice)} training images are in more than one fold (image {int(twice[0])}: folds "
            f"{', '.join(map(str, owners))}) — the folds were divided differently"
        )
    if (counts == 0).any():
        none = np.flatnonzero(counts == 0)
        raise FoldsError(
            f"{len(none)} of the {images} training images are in no fold (the first: image {int(none[0])})"
        )


def join_folds(found: Sequence[FoldPredictions], images: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Every training image's out-of-fold probabilities and given label, in the training set's order."""
    check_folds(found, images, where)
    probs = np.empty((images, found[0].probs.shape[1]), dtype=found[0].probs.dtype)
    labels = np.empty(images, dtype=found[0].labels.dtype)
    for p in found:
        probs[p.positions] = p.probs
        labels[p.positions] = p.labels
    return probs, labels
