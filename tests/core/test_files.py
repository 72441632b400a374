"""Stage outputs: the same content always gives the same bytes, and no signal leaves a temporary file behind."""

from __future__ import annotations

import os
import signal
import tempfile
import time

import numpy as np
import pytest

from pipeline.core import interrupt
from pipeline.core.files import write_json, write_npz


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


def test_a_signal_just_after_the_temporary_file_is_made_removes_it(default_handlers, monkeypatch, tmp_path):
    """SIGTERM the moment the temporary file exists, before the write has begun (once in CI, predict left
    `.000.png.prediction.<random>.png` so): it stops the write and leaves neither that file nor the output."""

    def made_then_signalled(*args, **kwargs):
        made = mkstemp(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return made

    mkstemp = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", made_then_signalled)
    interrupt.raise_on_signals()
    with pytest.raises(interrupt.Interrupted):
        write_json(tmp_path / "out.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []
