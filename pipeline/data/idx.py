"""Reading IDX files (the MNIST/EMNIST container format), with errors that name the file and the fault.

Format: a 4-byte magic (0, 0, dtype code, number of dimensions), one big-endian uint32 per dimension, then the
data. Image files are 3-dimensional (magic 2051), label files 1-dimensional (magic 2049), both unsigned bytes.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from pipeline.core.errors import UserError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_KIND_OF_MAGIC = {IMAGES_MAGIC: "an images file", LABELS_MAGIC: "a labels file"}


class IdxError(UserError, ValueError):
    """A malformed or unexpected IDX file; the message names the file and says what is wrong."""


def decompress(raw: bytes, name: str) -> bytes:
    """`raw` itself, or its gunzipped content when it is gzip data (told by content, not by file name)."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise IdxError(f"{name}: corrupt or truncated gzip data ({err})") from err


def read_bytes(path: Path) -> bytes:
    """The decompressed content of the file at `path`."""
    if not path.is_file():
        raise IdxError(f"{path}: file not found")
    return decompress(path.read_bytes(), str(path))


def parse_idx(data: bytes, name: str, expected_magic: int) -> np.ndarray:
    """Parse IDX bytes into a uint8 array; `name` is used in error messages only."""
    if len(data) < 8:
        raise IdxError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        hint = f" — is this {_KIND_OF_MAGIC[magic]}?" if magic in _KIND_OF_MAGIC else ""
        raise IdxError(f"{name}: expected magic {expected_magic}, found {magic}{hint}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{name}: truncated header ({len(data)} bytes, need {header})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) < expected:
        raise IdxError(f"{name}: truncated: header says {shape} ({expected} bytes), file has {len(data)}")
    if len(data) > expected:
        raise IdxError(f"{name}: {len(data) - expected} unexpected trailing bytes after {shape} data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def parse_images(data: bytes, name: str) -> np.ndarray:
    """Parse an IDX images file that must hold 28x28 images: N x 28 x 28 uint8."""
    images = parse_idx(data, name, IMAGES_MAGIC)
    if images.shape[1:] != (28, 28):
        raise IdxError(f"{name}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    return images


def parse_labels(data: bytes, name: str) -> np.ndarray:
    """Parse an IDX labels file: a vector of N uint8 labels."""
    return parse_idx(data, name, LABELS_MAGIC)


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    """Images and labels of one split must be equally many."""
    if len(images) != len(labels):
        raise IdxError(f"{images_name}: {len(images)} images but {labels_name} has {len(labels)} labels")
