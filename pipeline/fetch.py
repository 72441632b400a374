"""Stage `fetch`: every raw file the configured datasets need, verified, into data/raw/ (DVC-tracked).

MNIST's four IDX files go to data/raw/mnist/; for each EMNIST dataset of `ingest.datasets`, the files of its
first source that can be had go to data/raw/emnist/. Each file is looked for in the raw folder itself first (a
file put there by hand is used and never replaced), then in the mirror (HWLAB_DATA_MIRROR), then at the
configured sources; NIST's archive is downloaded only when no source of a dataset is complete without it.
Files are stored decompressed: their content, and so DVC's hash, is the same from every source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import reports_user_errors
from pipeline.core.interrupt import stop_on_signals
from pipeline.data import checksums, idx
from pipeline.data.archive import fetch_archive, member_names, read_member
from pipeline.data.download import SourcesExhausted, fetch_verified
from pipeline.data.mirror import mirror_root, mnist_sources
from pipeline.data.raw import locate, present, read_verified, verified, write_plain
from pipeline.data.sources import Source, first_complete, missing_files, parse_datasets

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def verified_content(name: str, known: Mapping[str, str]):
    """A `load` for `fetch_verified`: the content, once its checksum is the known one and it parses as IDX."""
    parse = idx.parse_images if "images" in name else idx.parse_labels

    def load(content: bytes, where: str) -> bytes:
        if checksums.verify(name, content, where, known) is None:
            raise checksums.ChecksumError(f"{where}: no known checksum for {name}")
        parse(content, where)
        return content

    return load


def fetch_mnist(folder: Path, sources: Sequence[str], known: Mapping[str, str], timeout: float) -> None:
    """MNIST's four files in `folder`: those already there verified, the others from the first good source."""
    for name in MNIST_FILES:
        path = locate(folder, name)
        if path is not None:
            read_verified(path, name, known, "fetch")
            print(f"fetch: {path} already there (sha256 verified)", flush=True)
            continue
        content, source = fetch_verified(f"{name}.gz", sources, verified_content(name, known), timeout)
        print(f"fetch: {write_plain(folder, name, content)} <- {source} (sha256 verified)", flush=True)


@dataclass(frozen=True)
class Origins:
    """Where EMNIST files can come from, in order of preference: the raw folder, the mirror, the archive."""

    raw: Path
    mirror: Path | None
    archive: Path | None = None
    members: Mapping[str, str] = field(default_factory=dict)  # the archive's: {file name: member path}

    @classmethod
    def with_archive(cls, origins: Origins, archive: Path) -> Origins:
        return cls(origins.raw, origins.mirror, archive, member_names(archive))

    def available(self) -> set[str]:
        return present(self.raw) | (present(self.mirror) if self.mirror else set()) | set(self.members)

    def content(self, name: str) -> tuple[bytes, str]:
        """The decompressed content of a file not yet in the raw folder, and where it came from."""
        path = locate(self.mirror, name) if self.mirror else None
        if path is not None:
            return idx.read_bytes(path), str(path)
        assert self.archive is not None, name  # plan() chose only files that some origin holds
        return read_member(self.archive, self.members[name]), str(self.archive)


def plan(datasets: Mapping[str, Sequence[Source]], available: set[str]) -> dict[str, Source | None]:
    """Each dataset's first source whose files are all available (None where there is none)."""
    return {name: first_complete(sources, available) for name, sources in datasets.items()}


def unavailable_message(
    datasets: Mapping[str, Sequence[Source]], chosen: Mapping[str, Source | None], available: set[str], raw: Path
) -> str:
    lines = []
    for name, sources in datasets.items():
        if chosen[name] is None:
            lines.append(f"fetch: {name}: no configured source can be had:")
            lines += [f"  {s.describe()}: missing {', '.join(missing_files(s, available))}" for s in sources]
    lines.append(
        f"Put NIST's files (the gzip/ folder of gzip.zip) into {raw}, set HWLAB_DATA_MIRROR to a mirror "
        "whose emnist/ folder holds them, or make fetch.emnist.archives reachable."
    )
    return "\n".join(lines)


def fetch_emnist(
    datasets: Mapping[str, Sequence[Source]],
    origins: Origins,
    archive_urls: Sequence[str],
    archive_dest: Path,
    md5: str,
    known: Mapping[str, str],
    timeout: float,
) -> dict[str, Source]:
    """The files of each dataset's first obtainable source in the raw folder; returns the sources chosen."""
    chosen = plan(datasets, origins.available())
    if None in chosen.values():
        try:
            origins = Origins.with_archive(origins, fetch_archive(archive_urls, archive_dest, md5, timeout))
        except SourcesExhausted as err:
            raise FileNotFoundError(
                f"{unavailable_message(datasets, chosen, origins.available(), origins.raw)}\n{err}"
            ) from err
        chosen = plan(datasets, origins.available())
        if None in chosen.values():
            raise FileNotFoundError(unavailable_message(datasets, chosen, origins.available(), origins.raw))
    for name, source in chosen.items():
        print(f"fetch: {name}: {source.describe()}", flush=True)
        for file in source.files():
            path = locate(origins.raw, file)
            if path is not None:
                read_verified(path, file, known, "fetch")
                continue
            content, where = origins.content(file)
            verified(content, file, where, known, "fetch")
            print(f"fetch: {write_plain(origins.raw, file, content)} <- {where}", flush=True)
    if origins.archive is not None:
        origins.archive.unlink()  # every needed member is out; the 536 MB archive is not kept
    return chosen


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> None:
    validate(cfg)
    raw = Path(cfg.paths.raw)
    known = checksums.known_sums(OmegaConf.to_container(cfg.ingest.checksums))
    mirror = mirror_root()
    fetch_mnist(raw / "mnist", mnist_sources(cfg.fetch.mnist.sources), known, cfg.fetch.timeout)
    fetch_emnist(
        parse_datasets(cfg.ingest.datasets),
        Origins(raw / "emnist", mirror / "emnist" if mirror else None),
        cfg.fetch.emnist.archives,
        Path(cfg.paths.downloads) / "gzip.zip",
        cfg.fetch.emnist.md5,
        known,
        cfg.fetch.timeout,
    )


if __name__ == "__main__":
    stop_on_signals(main, "fetch")
