"""Which EMNIST files make a prepared dataset: its ordered sources (a split, its parts, digits only or not).

fetch uses them to decide which files to get, ingest to decide which files to read; both take the first source
whose files are all there, so the two stages always agree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

SPLITS = ("digits", "balanced", "byclass", "bymerge", "letters", "mnist")
PARTS = ("train", "test")


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

    def mapping_file(self) -> str:
        return f"emnist-{self.split}-mapping.txt"

    def idx_files(self, part: str) -> tuple[str, str]:
        """The (images, labels) IDX file names of one part, without NIST's .gz."""
        stem = f"emnist-{self.split}-{part}"
        return f"{stem}-images-idx3-ubyte", f"{stem}-labels-idx1-ubyte"

    def files(self) -> list[str]:
        return [self.mapping_file()] + [name for part in self.parts for name in self.idx_files(part)]

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


def parse_datasets(datasets: Mapping[str, Mapping]) -> dict[str, list[Source]]:
    """`ingest.datasets` of the config: {dataset name: its sources in order}."""
    return {name: [parse_source(s, name) for s in spec["sources"]] for name, spec in datasets.items()}


def first_complete(sources: Sequence[Source], available: Collection[str]) -> Source | None:
    """The first source all of whose files (names without .gz) are in `available`."""
    return next((s for s in sources if all(f in available for f in s.files())), None)


def missing_files(source: Source, available: Collection[str]) -> list[str]:
    return [f for f in source.files() if f not in available]
