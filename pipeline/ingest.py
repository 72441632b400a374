"""Stage `ingest`: NIST's EMNIST IDX files (.gz or raw) -> data/prepared/<dataset>.npz, upright like MNIST.

Each dataset names an ordered list of sources (an EMNIST split, the parts to read, whether to keep only the
digit classes). The first source whose files are all present is used; which one, and why the ones before it
were passed over, is printed and stored in the dataset's `source`, so a run never hides what it evaluated on.
A present but malformed file stops the stage: only absence moves on to the next source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline import checksums, idx
from pipeline.datasets import (
    Dataset,
    emnist_upright,
    empty_images,
    keep_classes,
    parse_mapping,
    prepared_path,
    save_dataset,
    stratified_split,
)
from pipeline.mirror import ENV_VAR, emnist_dir

SPLITS = ("digits", "balanced", "byclass", "bymerge", "letters", "mnist")
PARTS = ("train", "test")
NIST_HINT = (
    "Download NIST's EMNIST (gzip.zip from https://www.nist.gov/itl/products-and-services/emnist-dataset), "
    f"unzip its gzip/ folder into {{folder}}, or set {ENV_VAR} to a mirror whose emnist/ folder holds them."
)


@dataclass(frozen=True)
class Holdout:
    """Divide the source's images into train and test, stratified by class: for splits that come as one part."""

    fraction: float
    seed: int


@dataclass(frozen=True)
class Source:
    split: str
    parts: tuple[str, ...]
    digits_only: bool
    holdout: Holdout | None = None

    def files(self) -> list[str]:
        names = [f"emnist-{self.split}-mapping.txt"]
        for part in self.parts:
            names += [f"emnist-{self.split}-{part}-images-idx3-ubyte", f"emnist-{self.split}-{part}-labels-idx1-ubyte"]
        return names

    def describe(self) -> str:
        kept = ", classes 0-9" if self.digits_only else ""
        held = ""
        if self.holdout:
            test = round(self.holdout.fraction * 100)
            held = f", divided {100 - test}/{test} into train/test (stratified, seed {self.holdout.seed})"
        return f"EMNIST {self.split} {'+'.join(self.parts)}{kept}{held}"


def parse_source(raw: Mapping, dataset: str) -> Source:
    split, parts = raw["split"], tuple(raw["parts"])
    if split not in SPLITS:
        raise ValueError(f"ingest.datasets.{dataset}: unknown EMNIST split {split!r}; choose one of {SPLITS}")
    if not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"ingest.datasets.{dataset}: parts must be some of {PARTS}, got {list(parts)}")
    holdout = raw.get("holdout")
    if holdout is not None:
        if len(parts) != 1 or not 0 < holdout["fraction"] < 1:
            raise ValueError(f"ingest.datasets.{dataset}: holdout divides one part by a fraction in (0, 1)")
        holdout = Holdout(float(holdout["fraction"]), int(holdout["seed"]))
    return Source(split, parts, bool(raw.get("digits_only", False)), holdout)


def locate(folder: Path, name: str) -> Path | None:
    """NIST ships .gz files; users who unpacked them have the raw ones. Either will do."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def missing_files(folder: Path, source: Source) -> list[str]:
    return [name for name in source.files() if locate(folder, name) is None]


def read_verified(folder: Path, name: str, known: Mapping[str, str]) -> bytes:
    path = locate(folder, name)
    assert path is not None, name  # missing_files() was checked first
    content = idx.read_bytes(path)
    if checksums.verify(name, content, str(path), known) is None:
        print(f"ingest: note: no known checksum for {name}; sha256 {checksums.sha256(content)}", flush=True)
    return content


def class_order(mapping: dict[int, str], digits_only: bool, name: str) -> list[int]:
    """The labels to keep, in the order that becomes 0..n-1: all of them, or the digits 0-9."""
    if not digits_only:
        return sorted(mapping)
    by_name = {n: label for label, n in mapping.items()}
    missing = [d for d in "0123456789" if d not in by_name]
    if missing:
        raise ValueError(f"{name}: this split has no digit classes {missing}; it cannot give a digits-only set")
    return [by_name[d] for d in "0123456789"]


def load_source(folder: Path, source: Source, known: Mapping[str, str]) -> Dataset:
    """Read, verify, turn upright and relabel (0..n-1) one source's files."""
    mapping_file = folder / f"emnist-{source.split}-mapping.txt"
    mapping = parse_mapping(mapping_file.read_text(encoding="ascii"), str(mapping_file))
    order = class_order(mapping, source.digits_only, str(mapping_file))
    no_labels = np.zeros(0, dtype=np.uint8)
    arrays = {"x_train": empty_images(), "y_train": no_labels, "x_test": empty_images(), "y_test": no_labels}
    for part in source.parts:
        img_name = f"emnist-{source.split}-{part}-images-idx3-ubyte"
        lbl_name = f"emnist-{source.split}-{part}-labels-idx1-ubyte"
        images = idx.parse_images(read_verified(folder, img_name, known), str(locate(folder, img_name)))
        labels = idx.parse_labels(read_verified(folder, lbl_name, known), str(locate(folder, lbl_name)))
        idx.check_pair(images, labels, img_name, lbl_name)
        unknown = sorted(set(np.unique(labels).tolist()) - set(mapping))
        if unknown:
            raise idx.IdxError(f"{lbl_name}: labels {unknown[:5]} are not in {mapping_file.name}")
        arrays[f"x_{part}"], arrays[f"y_{part}"] = keep_classes(emnist_upright(images), labels, order)
    if source.holdout:
        part = source.parts[0]
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        train, test = stratified_split(y, source.holdout.fraction, source.holdout.seed)
        arrays = {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
    class_names = tuple(mapping[label] for label in order)
    return Dataset(**arrays, class_names=class_names, source=f"{source.describe()} from {folder}")


def ingest_dataset(name: str, folder: Path, sources: Sequence[Source], known: Mapping[str, str]) -> Dataset:
    """The dataset from the first complete source, with an error listing every source when none is."""
    passed_over = []
    for source in sources:
        missing = missing_files(folder, source)
        if not missing:
            if passed_over:
                print(f"ingest: {name}: passed over " + "; ".join(passed_over), flush=True)
            ds = load_source(folder, source, known)
            print(f"ingest: {name}: using {source.describe()} ({len(ds.x_train)} train, "
                  f"{len(ds.x_test)} test images, {ds.num_classes} classes)", flush=True)
            return ds
        passed_over.append(f"{source.describe()} (missing {', '.join(missing)})")
    raise FileNotFoundError(
        f"ingest: {name}: no configured source is complete in {folder}:\n  "
        + "\n  ".join(passed_over) + "\n" + NIST_HINT.format(folder=folder)
    )


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    folder = emnist_dir(cfg.ingest.emnist_dir)
    known = {**checksums.KNOWN_SHA256, **OmegaConf.to_container(cfg.ingest.checksums)}
    for name, spec in cfg.ingest.datasets.items():
        sources = [parse_source(s, name) for s in spec.sources]
        ds = ingest_dataset(name, folder, sources, known)
        out = prepared_path(cfg.paths.prepared, name)
        save_dataset(out, ds)
        print(f"ingest: wrote {out}", flush=True)


if __name__ == "__main__":
    main()
