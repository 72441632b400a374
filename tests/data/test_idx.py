"""IDX parsing on files the tests write: the good case and every malformed kind, each with a useful message."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from pipeline.data import idx
from tests.helpers.idx import idx_bytes, write_idx


def images(n: int = 3, size: int = 28) -> np.ndarray:
    return np.arange(n * size * size, dtype=np.uint32).astype(np.uint8).reshape(n, size, size)


@pytest.mark.parametrize("compress", [True, False])
def test_reads_images_and_labels_gz_or_raw(tmp_path, compress):
    img = write_idx(tmp_path / "i", images(), compress)
    lbl = write_idx(tmp_path / "l", np.array([1, 2, 3], np.uint8), compress)
    x = idx.parse_images(idx.read_bytes(img), "i")
    y = idx.parse_labels(idx.read_bytes(lbl), "l")
    assert x.shape == (3, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, images())
    np.testing.assert_array_equal(y, [1, 2, 3])
    idx.check_pair(x, y, "i", "l")


def test_wrong_magic_says_which_kind_of_file_it_is():
    with pytest.raises(idx.IdxError, match=r"x.gz: expected magic 2051, found 2049 — is this a labels file\?"):
        idx.parse_images(idx_bytes(np.zeros(5, np.uint8)), "x.gz")


def test_unknown_magic():
    with pytest.raises(idx.IdxError, match="expected magic 2049, found 1234"):
        idx.parse_labels(idx_bytes(np.zeros(5, np.uint8), magic=1234), "y")


def test_truncated_data():
    data = idx_bytes(images())[:-10]
    with pytest.raises(idx.IdxError, match=r"f: truncated: header says \(3, 28, 28\)"):
        idx.parse_images(data, "f")


def test_truncated_header():
    with pytest.raises(idx.IdxError, match="f: truncated header"):
        idx.parse_images(idx_bytes(images())[:10], "f")
    with pytest.raises(idx.IdxError, match="too short"):
        idx.parse_images(b"\x00\x00", "f")


def test_trailing_bytes():
    with pytest.raises(idx.IdxError, match="10 unexpected trailing bytes"):
        idx.parse_labels(idx_bytes(np.zeros(4, np.uint8)) + b"\x00" * 10, "f")


def test_not_28x28():
    with pytest.raises(idx.IdxError, match="f: images are 32x32, expected 28x28"):
        idx.parse_images(idx_bytes(images(2, 32)), "f")


def test_count_mismatch():
    with pytest.raises(idx.IdxError, match="i: 3 images but l has 2 labels"):
        idx.check_pair(images(), np.zeros(2, np.uint8), "i", "l")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(idx_bytes(images()))[:-20])
    with pytest.raises(idx.IdxError, match=r"bad.gz: corrupt or truncated gzip data"):
        idx.read_bytes(path)


def test_missing_file(tmp_path):
    with pytest.raises(idx.IdxError, match=r"nothere.gz: file not found"):
        idx.read_bytes(tmp_path / "nothere.gz")
