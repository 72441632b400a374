"""Which Keras dtype policy to train with, and a scope that sets it and puts the previous one back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import keras

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 instructions that compute bfloat16 natively
POLICIES = ("float32", "mixed_bfloat16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo is not there."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    return frozenset(
        word for line in text.splitlines() if line.startswith("flags") for word in line.split(":", 1)[1].split()
    )


def resolve_precision(setting: str, flags: frozenset[str]) -> str:
    """`auto` is mixed_bfloat16 where the CPU has bfloat16 instructions (about 1.4x faster training there, same
    accuracy: bench/RESULTS.md) and float32 elsewhere (emulated bfloat16 is slower than float32)."""
    if setting == "auto":
        return "mixed_bfloat16" if flags & BF16_FLAGS else "float32"
    if setting not in POLICIES:
        raise ValueError(f"train.precision: unknown precision {setting!r}; known: auto, {', '.join(POLICIES)}")
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
