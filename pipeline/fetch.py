"""Stage `fetch`: MNIST's four IDX files from the first source that serves them intact -> data/prepared/mnist.npz."""

from __future__ import annotations

from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from pipeline import checksums, idx
from pipeline.datasets import DIGIT_NAMES, Dataset, prepared_path, save_dataset
from pipeline.download import fetch_verified
from pipeline.mirror import mnist_sources

FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def verified_loader(filename: str):
    """A `load` for `fetch_verified`: the known checksum of the content, then the IDX structure."""
    plain = filename.removesuffix(".gz")
    parse = idx.parse_images if "images" in plain else idx.parse_labels

    def load(content: bytes, where: str):
        if checksums.verify(plain, content, where) is None:
            raise checksums.ChecksumError(f"{where}: no known checksum for {plain}")
        return parse(content, where)

    return load


def fetch_mnist(sources: Sequence[str], timeout: float) -> Dataset:
    """Download (or copy from a mirror) and verify MNIST; every file must come out intact."""
    arrays = {}
    used = set()
    for key, filename in FILES.items():
        arrays[key], source = fetch_verified(filename, sources, verified_loader(filename), timeout)
        print(f"fetch: {filename} <- {source} (sha256 verified)", flush=True)
        used.add(source)
    for split in ("train", "test"):
        idx.check_pair(arrays[f"x_{split}"], arrays[f"y_{split}"], FILES[f"x_{split}"], FILES[f"y_{split}"])
    return Dataset(**arrays, class_names=DIGIT_NAMES, source=f"MNIST from {', '.join(sorted(used))}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    sources = mnist_sources(cfg.fetch.sources)
    ds = fetch_mnist(sources, cfg.fetch.timeout)
    out = prepared_path(cfg.paths.prepared, "mnist")
    save_dataset(out, ds)
    print(f"fetch: wrote {out} ({len(ds.x_train)} train, {len(ds.x_test)} test images)", flush=True)


if __name__ == "__main__":
    main()
