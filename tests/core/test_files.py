"""Stage outputs: the same content always gives the same bytes."""

from __future__ import annotations

import time

import numpy as np

from pipeline.core.files import write_npz


def test_npz_outputs_are_byte_identical_when_rewritten(tmp_path):
    """DVC hashes outputs: re-running a stage on the same input must not change them (numpy stamps the time)."""
    arrays = {"x": np.arange(12, dtype=np.uint8).reshape(3, 4), "names": np.array(["a", "b"])}
    write_npz(tmp_path / "a.npz", **arrays)
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    write_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as z:
        np.testing.assert_array_equal(z["x"], arrays["x"])
        assert list(z["names"]) == ["a", "b"]
