"""What every benchmark prints first: the machine, and its peak FLOP/s measured in the same run."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def describe() -> str:
    """CPU model, cores, the instruction sets that matter here, Python and TensorFlow versions."""
    cpu, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    import tensorflow as tf

    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return (
        f"{cpu}, {os.cpu_count()} cores ({' '.join(shown) or 'no AVX'}"
        f"{f'; ONEDNN_MAX_CPU_ISA={cap}' if cap else ''}); Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}"
    )


def peak_gflops(n: int = 4096, repeats: int = 3) -> dict[str, float]:
    """Best of `repeats` n x n matmuls in TensorFlow (oneDNN), float32, and bfloat16 where the CPU computes it
    (under ONEDNN_MAX_CPU_ISA=AVX2 a bfloat16 matmul crashes TensorFlow 2.21): a practical peak."""
    import tensorflow as tf

    from pipeline.core.cpu import cpu_flags
    from pipeline.modeling.precision import resolve_precision

    a = tf.random.stateless_normal((n, n), seed=(0, 0))
    kinds = [("fp32", a)]
    if resolve_precision("auto", cpu_flags()) == "mixed_bfloat16":
        kinds.append(("bf16", tf.cast(a, tf.bfloat16)))
    best = {}
    for label, t in kinds:
        tf.linalg.matmul(t, t).numpy()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            tf.linalg.matmul(t, t).numpy()
            times.append(time.perf_counter() - start)
        best[label] = 2 * n**3 / min(times) / 1e9
    return best
