"""What the CPU offers TensorFlow: its feature flags, less what ONEDNN_MAX_CPU_ISA forbids. Read from
/proc/cpuinfo, without importing TensorFlow (the test suite's first process asks before it starts any)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 instructions that compute bfloat16 natively
ISA_CAP = "ONEDNN_MAX_CPU_ISA"  # oneDNN uses no instructions beyond the one it names
# The caps that still allow oneDNN's bfloat16 instructions (its ISA names, from AVX512_CORE_BF16 up).
BF16_CAPS = frozenset(
    {"ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16"}
    | {"AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2"}
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo"), environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The CPU's feature flags (Linux) as TensorFlow may use them: without the bfloat16 ones where
    ONEDNN_MAX_CPU_ISA forbids them (`ONEDNN_MAX_CPU_ISA=AVX2` makes a CPU with AVX-512 stand in for an AVX2-only
    one, and bfloat16 work then runs emulated, or not at all); empty where /proc/cpuinfo is not there."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    flags = frozenset(
        word for line in text.splitlines() if line.startswith("flags") for word in line.split(":", 1)[1].split()
    )
    return flags - BF16_FLAGS if bfloat16_capped(environ) else flags


def bfloat16_capped(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ONEDNN_MAX_CPU_ISA keeps oneDNN from its bfloat16 instructions (there, a bfloat16 convolution can
    fail to find a kernel at all: seen under AVX2 with TensorFlow 2.21)."""
    cap = environ.get(ISA_CAP, "").strip().upper()
    return bool(cap) and cap not in BF16_CAPS
