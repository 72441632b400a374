"""Marks that skip a test where what it tests cannot run, and the one rule for what it needs from the machine."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from pipeline.core.cpu import bfloat16_capped

# Forcing bfloat16 is what these test; under an ISA cap that forbids its instructions (the AVX2 stand-in of
# bench/RESULTS.md) oneDNN has no bfloat16 convolution to run, which a real CPU without them does have.
needs_bfloat16_kernels = pytest.mark.skipif(bfloat16_capped(), reason="ONEDNN_MAX_CPU_ISA forbids bfloat16 kernels")


def unavailable(reason: str, ci_must: str) -> NoReturn:
    """What a test needs is missing here: it is skipped, saying why; in CI it fails, since CI provides everything
    (.ci/run installs the system packages as root, and the data mirror is beside the clone)."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must {ci_must}: {reason}")
    pytest.skip(reason)
