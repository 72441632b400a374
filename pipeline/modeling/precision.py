"""Which Keras dtype policy to train with, and a scope that sets it and puts the previous one back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pipeline.core.cpu import BF16_FLAGS
from pipeline.core.lazy import LazyModule

keras = LazyModule("keras")  # imported when a dtype policy is first set (pipeline/core/lazy.py)

DTYPE_POLICIES = ("float32", "mixed_bfloat16")  # the Keras dtype policies training may use
PRECISIONS = ("auto", *DTYPE_POLICIES)  # what train.precision may be


def resolve_precision(setting: str, flags: frozenset[str]) -> str:
    """The dtype policy for a train.precision (one of PRECISIONS: the config schema checked it). `auto` is
    mixed_bfloat16 where the CPU has bfloat16 instructions (about 1.4x faster training there, same accuracy:
    bench/RESULTS.md) and float32 elsewhere (emulated bfloat16 is slower than float32)."""
    if setting == "auto":
        return "mixed_bfloat16" if flags & BF16_FLAGS else "float32"
    return setting


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras's dtype policy is process-wide; a sweep runs several trainings and evaluations in one process."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
