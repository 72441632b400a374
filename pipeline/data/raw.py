"""The raw data folder: IDX and mapping files as NIST and LeCun publish them, each verified before use.

A file may be stored compressed (`<name>.gz`, as published, or as a user copied it in) or plain; fetch writes
the plain content, which is the same whatever the source (a mirror may have recompressed the .gz), so the
hashes that DVC records do not depend on where a file came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline.core.files import atomic_path
from pipeline.data import checksums
from pipeline.data.idx import read_bytes


def locate(folder: Path, name: str) -> Path | None:
    """`name` in `folder`, compressed or plain; None when it is not there."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def present(folder: Path) -> set[str]:
    """The names (without .gz) of the files in `folder`; none when it does not exist."""
    if not folder.is_dir():
        return set()
    return {p.name.removesuffix(".gz") for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def read_verified(path: Path, name: str, known: Mapping[str, str], stage: str) -> bytes:
    """The decompressed content of `path` (holding `name`), checked against its known SHA-256 where one is known."""
    content = read_bytes(path)
    try:
        verified(content, name, str(path), known, stage)
    except checksums.ChecksumError as err:
        raise checksums.ChecksumError(f"{err}; delete it and run `dvc repro` to fetch it again") from err
    return content


def verified(content: bytes, name: str, where: str, known: Mapping[str, str], stage: str) -> bytes:
    """`content` once checked against the known SHA-256 of `name`; with none known, a note gives its sum, so that
    the user can add it (`ingest.checksums`)."""
    if checksums.verify(name, content, where, known) is None:
        print(f"{stage}: note: no known checksum for {name}; sha256 {checksums.sha256(content)}", flush=True)
    return content


def write_plain(folder: Path, name: str, content: bytes) -> Path:
    """Store `content` as `folder/name`, atomically: a killed fetch leaves no half-written file behind."""
    path = folder / name
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)
    return path
