"""Stage `ingest`: the raw IDX files in data/raw/ -> data/prepared/<dataset>.npz, one format, upright like MNIST.

MNIST's files become mnist.npz; NIST's EMNIST files (.gz or plain) become one file per `ingest.datasets` entry.

Each dataset names an ordered list of sources (an EMNIST split, the parts to read, whether to keep only the
digit classes). The first source whose files are all present is used; which one, and why the ones before it
were passed over, is printed and stored in the dataset's `source`, so a run never hides what it evaluated on.
A present but malformed file stops the stage: only absence moves on to the next source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import reports_user_errors
from pipeline.core.interrupt import stop_on_signals
from pipeline.data import checksums, idx
from pipeline.data.datasets import (
    DIGIT_NAMES,
    Dataset,
    DatasetError,
    all_rows,
    emnist_upright,
    empty_images,
    keep_classes,
    parse_mapping,
    prepared_path,
    save_dataset,
    stratified_split,
)
from pipeline.data.raw import locate, present, read_verified
from pipeline.data.sources import Source, missing_files, parse_datasets

NOT_FETCHED = "run the fetch stage first (`dvc repro fetch`), or put NIST's files into {folder}"


def read_raw(folder: Path, name: str, known: Mapping[str, str]) -> tuple[bytes, str]:
    """The verified content of `name` in the raw folder, and the path to name in messages."""
    path = locate(folder, name)
    if path is None:
        raise FileNotFoundError(f"{folder / name}: not found — {NOT_FETCHED.format(folder=folder)}")
    return read_verified(path, name, known, "ingest"), str(path)


def load_mnist(folder: Path, known: Mapping[str, str]) -> Dataset:
    """MNIST's four IDX files (as fetch stores them) as a prepared dataset."""
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        arrays[f"{split}_file"] = f"{prefix}-images-idx3-ubyte"
        images, images_path = read_raw(folder, arrays[f"{split}_file"], known)
        labels, labels_path = read_raw(folder, f"{prefix}-labels-idx1-ubyte", known)
        arrays[f"x_{split}"] = idx.parse_images(images, images_path)
        arrays[f"y_{split}"] = idx.parse_labels(labels, labels_path)
        idx.check_pair(arrays[f"x_{split}"], arrays[f"y_{split}"], images_path, labels_path)
        arrays[f"{split}_rows"] = all_rows(len(arrays[f"y_{split}"]))
    return Dataset(**arrays, class_names=DIGIT_NAMES, source="MNIST (LeCun et al.'s official files)")


def class_order(mapping: dict[int, str], digits_only: bool, name: str) -> list[int]:
    """The labels to keep, in the order that becomes 0..n-1: all of them, or the digits 0-9."""
    if not digits_only:
        return sorted(mapping)
    by_name = {n: label for label, n in mapping.items()}
    missing = [d for d in "0123456789" if d not in by_name]
    if missing:
        raise DatasetError(f"{name}: this split has no digit classes {missing}; it cannot give a digits-only set")
    return [by_name[d] for d in "0123456789"]


def load_source(folder: Path, source: Source, known: Mapping[str, str]) -> Dataset:
    """Read, verify, turn upright and relabel (0..n-1) one source's files."""
    mapping_text, mapping_file = read_raw(folder, source.mapping_file(), known)
    mapping = parse_mapping(mapping_text.decode("ascii"), mapping_file)
    order = class_order(mapping, source.digits_only, str(mapping_file))
    no_labels, no_rows = np.zeros(0, dtype=np.uint8), all_rows(0)
    arrays = {"x_train": empty_images(), "y_train": no_labels, "x_test": empty_images(), "y_test": no_labels}
    arrays |= {"train_rows": no_rows, "test_rows": no_rows, "train_file": "", "test_file": ""}
    for part in source.parts:
        img_name, lbl_name = source.idx_files(part)
        images = idx.parse_images(*read_raw(folder, img_name, known))
        labels = idx.parse_labels(*read_raw(folder, lbl_name, known))
        idx.check_pair(images, labels, img_name, lbl_name)
        unknown = sorted(set(np.unique(labels).tolist()) - set(mapping))
        if unknown:
            raise idx.IdxError(f"{lbl_name}: labels {unknown[:5]} are not in {source.mapping_file()}")
        kept = keep_classes(emnist_upright(images), labels, order)
        arrays[f"x_{part}"], arrays[f"y_{part}"], arrays[f"{part}_rows"] = kept
        arrays[f"{part}_file"] = img_name
    if source.holdout:
        # Both sides come from the one part's file: each keeps its images' rows in it.
        part = source.parts[0]
        x, y, rows, file = (arrays[k] for k in (f"x_{part}", f"y_{part}", f"{part}_rows", f"{part}_file"))
        train, test = stratified_split(y, source.holdout.fraction, source.holdout.seed)
        arrays = {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
        arrays |= {"train_rows": rows[train], "test_rows": rows[test], "train_file": file, "test_file": file}
    class_names = tuple(mapping[label] for label in order)
    return Dataset(**arrays, class_names=class_names, source=source.describe())


def ingest_dataset(name: str, folder: Path, sources: Sequence[Source], known: Mapping[str, str]) -> Dataset:
    """The dataset from the first complete source, with an error listing every source when none is."""
    passed_over = []
    available = present(folder)
    for source in sources:
        missing = missing_files(source, available)
        if not missing:
            if passed_over:
                print(f"ingest: {name}: passed over " + "; ".join(passed_over), flush=True)
            ds = load_source(folder, source, known)
            print(
                f"ingest: {name}: using {source.describe()} ({len(ds.x_train)} train, "
                f"{len(ds.x_test)} test images, {ds.num_classes} classes)",
                flush=True,
            )
            return ds
        passed_over.append(f"{source.describe()} (missing {', '.join(missing)})")
    raise FileNotFoundError(
        f"ingest: {name}: no configured source is complete in {folder}:\n  "
        + "\n  ".join(passed_over)
        + "\n"
        + NOT_FETCHED.format(folder=folder).capitalize()
    )


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> None:
    validate(cfg)
    raw = Path(cfg.paths.raw)
    known = checksums.known_sums(OmegaConf.to_container(cfg.ingest.checksums))
    write_prepared(cfg.paths.prepared, "mnist", load_mnist(raw / "mnist", known))
    for name, sources in parse_datasets(cfg.ingest.datasets).items():
        write_prepared(cfg.paths.prepared, name, ingest_dataset(name, raw / "emnist", sources, known))


def write_prepared(prepared_dir: str, name: str, ds: Dataset) -> None:
    out = prepared_path(prepared_dir, name)
    save_dataset(out, ds)
    print(f"ingest: wrote {out}", flush=True)


if __name__ == "__main__":
    stop_on_signals(main, "ingest")
