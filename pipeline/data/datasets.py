"""The prepared dataset format shared by every stage, and the pure transformations that produce it.

A prepared dataset is `data/prepared/<name>.npz` holding x_train, y_train, x_test, y_test (uint8, N x 28 x 28,
upright like MNIST), class_names, `source` (one line saying where the data came from), and for every image its
row in the official IDX file it came from (train_rows, test_rows; the files: train_file, test_file), so that a
label found wrong can be looked up or reported by the index everyone else uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import UserError
from pipeline.core.files import write_npz

DIGIT_NAMES = tuple(str(d) for d in range(10))
DISPLAY_NAMES = {"mnist": "MNIST", "emnist_digits": "EMNIST digits", "emnist_balanced": "EMNIST 47 classes"}


class DatasetError(UserError, ValueError):
    """A mapping file or a prepared dataset that is not what the config asks of it; the message names both."""


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    # Each image's row in its official IDX file (images and labels files share rows), and that file's name (the
    # images file, without .gz; "" for a split with no images). The digits kept of a split, or one side of a
    # stand-in's train/test division, are not rows 0..n-1 of their file.
    train_rows: np.ndarray
    test_rows: np.ndarray
    train_file: str
    test_file: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def display(name: str) -> str:
    """A dataset's name as a person reads it in a report: `EMNIST digits` for `emnist_digits`."""
    return DISPLAY_NAMES.get(name, name)


def prepared_path(prepared_dir: str | Path, name: str) -> Path:
    return Path(prepared_dir) / f"{name}.npz"


def save_dataset(path: str | Path, ds: Dataset) -> None:
    write_npz(
        path,
        x_train=ds.x_train,
        y_train=ds.y_train,
        x_test=ds.x_test,
        y_test=ds.y_test,
        class_names=np.array(ds.class_names),
        source=np.array(ds.source),
        train_rows=ds.train_rows,
        test_rows=ds.test_rows,
        train_file=np.array(ds.train_file),
        test_file=np.array(ds.test_file),
    )


def load_dataset(path: str | Path) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prepared dataset not found — run `dvc repro` (fetch/ingest) first")
    with np.load(path) as z:
        if "test_rows" not in z.files:
            raise DatasetError(
                f"{path}: written before official row indices were kept — run ingest again (`dvc repro`)"
            )
        return Dataset(
            x_train=z["x_train"],
            y_train=z["y_train"],
            x_test=z["x_test"],
            y_test=z["y_test"],
            class_names=tuple(str(c) for c in z["class_names"]),
            source=str(z["source"]),
            train_rows=z["train_rows"],
            test_rows=z["test_rows"],
            train_file=str(z["train_file"]),
            test_file=str(z["test_file"]),
        )


def empty_images() -> np.ndarray:
    return np.zeros((0, 28, 28), dtype=np.uint8)


def emnist_upright(images: np.ndarray) -> np.ndarray:
    """NIST stores EMNIST images transposed (rows are the glyph's columns); swap the axes back to MNIST's."""
    return np.ascontiguousarray(images.transpose(0, 2, 1))


def keep_classes(
    images: np.ndarray, labels: np.ndarray, classes: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep only the given classes, relabelled 0..len(classes)-1 in the given order; and the rows kept."""
    remap = np.full(256, -1, dtype=np.int16)
    remap[np.asarray(classes)] = np.arange(len(classes))
    new = remap[labels]
    mask = new >= 0
    return images[mask], new[mask].astype(np.uint8), np.flatnonzero(mask)


def all_rows(n: int) -> np.ndarray:
    """The official rows of a whole file's n images, in the file's order."""
    return np.arange(n, dtype=np.int64)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test), each class divided in the same proportion by a seeded shuffle; both sorted."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(len(members) * test_fraction)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def parse_mapping(text: str, name: str) -> dict[int, str]:
    """EMNIST's mapping file -> {label: class name}.

    Each line is `<label> <ASCII code>...` (CRLF line ends). The letters split merges cases, so its lines carry
    two codes ("1 65 97") and its labels start at 1; such a class is named by both characters ("Aa").
    """
    classes: dict[int, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not all(p.isdigit() for p in parts):
            raise DatasetError(f"{name}: line {lineno}: expected '<label> <ASCII code>', found {line!r}")
        label = int(parts[0])
        if label in classes:
            raise DatasetError(f"{name}: line {lineno}: label {label} appears twice")
        classes[label] = "".join(chr(int(code)) for code in parts[1:])
    if not classes:
        raise DatasetError(f"{name}: no classes")
    return classes
