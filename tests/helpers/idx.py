"""IDX files the tests write themselves, as MNIST's and NIST's are laid out."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file for a uint8 array (magic from its number of dimensions unless given)."""
    magic = magic if magic is not None else 0x0800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True, magic: int | None = None) -> Path:
    data = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path
