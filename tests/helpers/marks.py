"""Marks that skip a test where what it tests cannot run."""

from __future__ import annotations

import pytest

from pipeline.core.cpu import bfloat16_capped

# Forcing bfloat16 is what these test; under an ISA cap that forbids its instructions (the AVX2 stand-in of
# bench/RESULTS.md) oneDNN has no bfloat16 convolution to run, which a real CPU without them does have.
needs_bfloat16_kernels = pytest.mark.skipif(bfloat16_capped(), reason="ONEDNN_MAX_CPU_ISA forbids bfloat16 kernels")
